"""outbox.Flusher's threaded writes: every socket gets exactly its bytes, in order, and what a full
socket buffer does not take goes to the transport path (write_rest) without loss."""

from __future__ import annotations

import asyncio
import socket

from ownbase.realtime import outbox


class Target:
    """A socket as the flusher sees it: its bytes go out directly, the rest via write_rest."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        self.sock = sock
        self.data = data
        self.rest = b""
        self.flushed = False

    def flush(self) -> None:
        self.flushed = True
        self.sock.sendall(self.data)

    def take_direct(self) -> tuple[int, bytes] | None:
        return self.sock.fileno(), self.data

    def write_rest(self, data: bytes) -> None:
        self.rest += data


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    sock.setblocking(False)
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_many_sockets_get_their_bytes_and_a_full_one_keeps_the_rest() -> None:
    pairs = [socket.socketpair() for _ in range(outbox.PARALLEL_MIN_SOCKETS + 44)]
    try:
        for ours, _ in pairs:
            ours.setblocking(False)
        targets = [Target(ours, f"message {i};".encode() * (i % 7 + 1)) for i, (ours, _) in enumerate(pairs)]
        # One socket's buffer is full: the direct write takes part (or none) of a large message.
        full = targets[100]
        full.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        full.data = b"x" * (1 << 20)

        async def run() -> None:
            flusher = outbox.Flusher(threads=3)
            try:
                for target in targets:
                    flusher.mark(target)
                await asyncio.sleep(0)  # the flush runs at the end of this pass
                await asyncio.sleep(0)
            finally:
                flusher.close()

        asyncio.run(run())
        assert not any(t.flushed for t in targets)  # the threaded path ran, not per-socket flushes
        for target, (_, peer) in zip(targets, pairs):
            got = _read_all(peer)
            if target is full:
                assert target.rest and got + target.rest == target.data
            else:
                assert got == target.data and target.rest == b""
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_few_sockets_are_flushed_on_the_loop() -> None:
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        targets = [Target(ours, b"hello") for ours, _ in pairs]

        async def run() -> None:
            flusher = outbox.Flusher(threads=3)
            for target in targets:
                flusher.mark(target)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            flusher.close()

        asyncio.run(run())
        assert all(t.flushed for t in targets)
        assert [_read_all(peer) for _, peer in pairs] == [b"hello"] * 3
    finally:
        for a, b in pairs:
            a.close()
            b.close()

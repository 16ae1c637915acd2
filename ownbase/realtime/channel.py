"""One joined channel on one socket, and what a client may push to it.

Join: topic ``realtime:<name>``; the token (``access_token`` in the payload, else the socket's
apikey) is checked; a private channel needs RLS read access on ``realtime.messages``; the
postgres_changes bindings are parsed, their tables' capture installed and the subscription
registered before the ``ok`` reply, so SUBSCRIBED means live.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from ownbase.realtime import authz, errors
from ownbase.realtime.bindings import Binding, BindingError, parse_binding
from ownbase.realtime.bus import Broadcast, PresenceDiff
from ownbase.realtime.capture import ensure_trigger, publication_tables
from ownbase.realtime.filters import FilterError
from ownbase.realtime.presence import as_state
from ownbase.realtime.serializer import Frame
from ownbase.realtime.tokens import Identity, TokenProblem, identify
from ownbase.realtime.topics import hub_key

if TYPE_CHECKING:
    from ownbase.realtime.socket import Connection

log = logging.getLogger("ownbase.realtime")


class ChannelSub:
    __slots__ = ("conn", "topic", "sub_topic", "join_ref", "private", "ident", "key", "sender_id",
                 "self_broadcast", "ack", "presence_key", "presence_enabled", "bindings", "write_ok",
                 "tracked", "closed")

    def __init__(self, conn: "Connection", topic: str, join_ref: str | None, private: bool,
                 ident: Identity, config: dict[str, Any], bindings: list[Binding]) -> None:
        self.conn = conn
        self.topic = topic
        self.sub_topic = topic[len("realtime:"):]
        self.join_ref = join_ref
        self.private = private
        self.ident = ident
        self.key = hub_key(topic, private)
        self.sender_id = f"{conn.hub.proc}:{conn.uid}:{join_ref}"
        broadcast = config.get("broadcast") if isinstance(config.get("broadcast"), dict) else {}
        presence = config.get("presence") if isinstance(config.get("presence"), dict) else {}
        self.self_broadcast = bool(broadcast.get("self"))
        self.ack = bool(broadcast.get("ack"))
        self.presence_key = str(presence.get("key") or "") or str(uuid.uuid4())
        self.presence_enabled = bool(presence.get("enabled"))
        self.bindings = bindings
        self.write_ok: dict[str, bool] = {}
        self.tracked: tuple[str, dict[str, Any]] | None = None  # (key, meta)
        self.closed = False

    def send(self, frame: Frame) -> None:
        self.conn.send_frame(frame)

    def reply(self, ref: str | None, status: str, response: dict[str, Any]) -> None:
        self.conn.send_frame(Frame(self.join_ref, ref, self.topic, "phx_reply",
                                   {"status": status, "response": response}))

    def system(self, extension: str, status: str, message: str) -> None:
        self.conn.send_frame(Frame(self.join_ref, None, self.topic, "system",
                                   {"extension": extension, "status": status, "message": message,
                                    "channel": self.sub_topic}))

    async def may_write(self, extension: str) -> bool:
        if not self.private:
            return True
        if extension not in self.write_ok:
            self.write_ok[extension] = await authz.can_write(self.conn.ctx.db, self.ident,
                                                            self.sub_topic, extension)
        return self.write_ok[extension]

    # --- leaving ---------------------------------------------------------------------------
    async def remove(self) -> None:
        """Forget this channel: hub registry, socket table, presence entry (with its leave)."""
        if self.closed:
            return
        self.closed = True
        hub = self.conn.hub
        hub.remove(self)
        if self.conn.channels.get(self.topic) is self:
            del self.conn.channels[self.topic]
        await self.untrack()

    async def shutdown(self, message: str) -> None:
        """Server-side close (expired token, lost permission): system error, then phx_close."""
        if self.closed:
            return
        self.system("system", "error", message)
        self.send(Frame(self.join_ref, None, self.topic, "phx_close", {}))
        await self.remove()

    # --- presence --------------------------------------------------------------------------
    async def send_presence_state(self) -> None:
        entries = await self.conn.hub.presence.list(self.key)
        self.send(Frame(None, None, self.topic, "presence_state", as_state(entries)))

    async def track(self, payload: dict[str, Any]) -> None:
        hub = self.conn.hub
        meta = {**payload, "phx_ref": _ref()}
        joins = {self.presence_key: {"metas": [meta]}}
        leaves: dict[str, Any] = {}
        old = self.tracked
        if old is not None:
            meta["phx_ref_prev"] = old[1]["phx_ref"]
            leaves = {old[0]: {"metas": [old[1]]}}
        await hub.presence.add(self.key, self.presence_key, meta)
        if old is not None:
            await hub.presence.remove(self.key, [old[1]["phx_ref"]])
        self.tracked = (self.presence_key, meta)
        await hub.bus.publish(PresenceDiff(self.key, joins, leaves))

    async def untrack(self) -> None:
        old = self.tracked
        if old is None:
            return
        self.tracked = None
        hub = self.conn.hub
        try:
            await hub.presence.remove(self.key, [old[1]["phx_ref"]])
            await hub.bus.publish(PresenceDiff(self.key, {}, {old[0]: {"metas": [old[1]]}}))
        except Exception as exc:  # noqa: BLE001 - a dropped socket must still be cleaned up locally
            log.warning("realtime: presence untrack failed: %s", exc)


def _ref() -> str:
    return uuid.uuid4().hex[:16]


# --- join --------------------------------------------------------------------------------------
async def join(conn: "Connection", frame: Frame) -> None:
    topic = frame.topic
    payload = frame.payload if isinstance(frame.payload, dict) else {}
    config = payload.get("config") if isinstance(payload.get("config"), dict) else {}

    def fail(reason: str) -> None:
        conn.send_frame(Frame(frame.join_ref, frame.ref, topic, "phx_reply",
                              {"status": "error", "response": {"reason": reason}}))

    settings = conn.ctx.settings
    if not topic.startswith("realtime:") or topic == "realtime:":
        return fail(errors.TOPIC_REQUIRED)
    if conn.hub.closing:
        return fail(errors.RESTARTING)
    if topic not in conn.channels and len(conn.channels) >= settings.realtime_max_channels_per_socket:
        return fail(errors.TOO_MANY_CHANNELS)
    if not conn.allow_join():
        return fail(errors.TOO_MANY_JOINS)
    token = payload.get("access_token")
    if not isinstance(token, str) or not token or token.startswith("sb_"):
        token = conn.token
    try:
        ident = identify(conn.ctx.keys, token)
    except TokenProblem as exc:
        return fail(errors.join_token_error(exc.message))
    private = bool(config.get("private"))
    sub_topic = topic[len("realtime:"):]
    if private and not await authz.can_read(conn.ctx.db, ident, sub_topic):
        return fail(errors.join_unauthorized(sub_topic))

    raw_bindings = config.get("postgres_changes") or []
    if not isinstance(raw_bindings, list):
        raw_bindings = []
    bindings: list[Binding] = []
    try:
        for raw in raw_bindings:
            b = parse_binding(raw)
            if all(b.id != other.id for other in bindings):
                bindings.append(b)
    except (BindingError, FilterError) as exc:
        return fail(errors.pg_filter_error(str(exc)))
    pg_problem = None
    if bindings:
        pg_problem = await _prepare_capture(conn, bindings)

    previous = conn.channels.get(topic)
    if previous is not None:  # a re-join of the same topic replaces the old channel
        await previous.remove()
    sub = ChannelSub(conn, topic, frame.join_ref, private, ident, config, bindings)
    conn.channels[topic] = sub
    conn.hub.add(sub)  # live from here: broadcasts, presence diffs and changes reach it
    sub.reply(frame.ref, "ok", {"postgres_changes": [b.echo for b in bindings]})
    if sub.presence_enabled:
        await sub.send_presence_state()
    if bindings:
        if pg_problem is None:
            sub.system("postgres_changes", "ok", errors.SUBSCRIBED_PG)
        else:
            sub.system("postgres_changes", "error", pg_problem)


async def _prepare_capture(conn: "Connection", bindings: list[Binding]) -> str | None:
    """Install capture on every table the bindings name; say what is wrong, if anything."""
    problems: list[str] = []
    try:
        async with conn.ctx.db.owner.acquire() as db:
            for b in bindings:
                rows = await publication_tables(db, b.schema, b.table)
                if not rows:
                    params = ", ".join(f"{k}: {v}" for k, v in b.echo.items() if k != "id")
                    problems.append(errors.pg_unable(params))
                    continue
                for row in rows:
                    await ensure_trigger(db, row["oid"], row["schemaname"], row["tablename"])
    except asyncpg.PostgresError as exc:
        log.warning("realtime: preparing change capture failed: %s", exc)
        problems.append(errors.pg_unable(str(exc)))
    return problems[0] if problems else None


# --- pushes on a joined channel ----------------------------------------------------------------
async def push(conn: "Connection", sub: ChannelSub, frame: Frame, size: int) -> None:
    event = frame.event
    payload = frame.payload if isinstance(frame.payload, dict) else {}
    if event == "broadcast":
        await _broadcast(conn, sub, frame, payload, size)
    elif event == "presence":
        await _presence(conn, sub, frame, payload, size)
    elif event == "access_token":
        await _access_token(conn, sub, payload)
    elif event == "phx_leave":
        sub.reply(frame.ref, "ok", {})
        await sub.remove()
        conn.send_frame(Frame(sub.join_ref, None, sub.topic, "phx_close", {}))
    elif event == "phx_join":
        await join(conn, frame)


async def _broadcast(conn: "Connection", sub: ChannelSub, frame: Frame, payload: dict[str, Any],
                     size: int) -> None:
    if size > conn.ctx.settings.realtime_max_message_bytes:
        if frame.ref is not None:
            sub.reply(frame.ref, "error", {"reason": errors.PAYLOAD_TOO_LARGE})
        return
    event = payload.get("event")
    if not isinstance(event, str):
        if frame.ref is not None and sub.ack:
            sub.reply(frame.ref, "error", {"reason": "broadcast needs an event"})
        return
    if not await sub.may_write("broadcast"):
        if frame.ref is not None and sub.ack:
            sub.reply(frame.ref, "ok", {})  # Supabase drops unauthorised sends silently
        return
    message: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload.get("payload")}
    if isinstance(payload.get("meta"), dict):
        message["meta"] = payload["meta"]
    await conn.hub.bus.publish(Broadcast(sub.key, message, sub.sender_id))
    if sub.ack and frame.ref is not None:
        sub.reply(frame.ref, "ok", {})


async def _presence(conn: "Connection", sub: ChannelSub, frame: Frame, payload: dict[str, Any],
                    size: int) -> None:
    kind = payload.get("event")
    if kind == "track":
        data = payload.get("payload")
        if not isinstance(data, dict):
            sub.reply(frame.ref, "error", {"reason": errors.PRESENCE_NOT_MAP})
            return
        if size > conn.ctx.settings.realtime_max_message_bytes:
            sub.reply(frame.ref, "error", {"reason": errors.TRACK_TOO_LARGE})
            return
        if not await sub.may_write("presence"):
            sub.reply(frame.ref, "error", {"reason": "Unauthorized"})
            return
        if not sub.presence_enabled:
            sub.presence_enabled = True
            await sub.send_presence_state()
        await sub.track(data)
        sub.reply(frame.ref, "ok", {})
    elif kind == "untrack":
        await sub.untrack()
        sub.reply(frame.ref, "ok", {})
    else:
        sub.reply(frame.ref, "error", {"reason": "unknown presence event"})


async def _access_token(conn: "Connection", sub: ChannelSub, payload: dict[str, Any]) -> None:
    token = payload.get("access_token")
    if not isinstance(token, str) or not token or token.startswith("sb_") or token == sub.ident.token:
        return
    try:
        ident = identify(conn.ctx.keys, token)
    except TokenProblem as exc:
        await sub.shutdown(exc.message)
        return
    if sub.private and not await authz.can_read(conn.ctx.db, ident, sub.sub_topic):
        await sub.shutdown(errors.lost_permission(sub.sub_topic))
        return
    sub.ident = ident
    sub.write_ok.clear()
    conn.token = token


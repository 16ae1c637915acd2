"""The REST engine's public interface, used by /rest/v1 and by other packages (dynamic tables,
``gen types``, OpenAPI):

* ``handle(ctx, method=, schema=, relation=, query=, headers=, body=, auth=, rpc=, extra_schema=)``
  runs one PostgREST request (parse → plan → render → respond) under the caller's role, so RLS
  decides. With ``extra_schema=True`` the schema need not be listed in ``OWNBASE_DB_SCHEMAS``: it is
  loaded into the cache on demand (and kept there for later reloads).
* ``reload_schema(ctx)`` reloads the schema cache now.
* ``get_schema_cache(ctx)`` returns the current ``SchemaCache`` (loading it first if needed).

The cache is reloaded on ``NOTIFY pgrst, 'reload schema'`` and ``NOTIFY ownbase, 'reload schema'``,
and within two seconds after any other DDL through a cheap catalog fingerprint poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ownbase.db.pool import connect
from ownbase.db.sql import IdentifierError
from ownbase.rest import errors
from ownbase.rest.pipeline import run
from ownbase.rest.schema_cache import SchemaCache, fingerprint, load
from ownbase.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.http.auth_context import AuthContext

log = logging.getLogger("ownbase.rest")

POLL_SECONDS = 1.0  # fingerprint check interval: DDL without NOTIFY is seen within ~1 s
CHANNELS = ("pgrst", "ownbase")


@dataclass
class RestState:
    cache: SchemaCache | None = None
    extra_schemas: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    listener: Any = None  # the asyncpg connection LISTENing on the reload channels
    poller: asyncio.Task[None] | None = None
    reloads: int = 0
    pending: asyncio.Task[None] | None = None  # the reload NOTIFYs are coalesced into
    again: bool = False  # a NOTIFY arrived while that reload ran: run once more


def _state(ctx: Context) -> RestState:
    st = ctx.state.get("rest")
    if st is None:
        st = RestState()
        ctx.state["rest"] = st
    return st


def exposed_schemas(ctx: Context) -> list[str]:
    return list(dict.fromkeys(ctx.settings.db_schemas or ["public"]))


def _wanted_schemas(ctx: Context, st: RestState) -> list[str]:
    return list(dict.fromkeys([*exposed_schemas(ctx), *sorted(st.extra_schemas)]))


async def reload_schema(ctx: Context) -> None:
    """Reload the schema cache now (all exposed schemas plus those loaded on demand)."""
    st = _state(ctx)
    async with st.lock:
        async with ctx.db.owner.acquire() as conn:
            st.cache = await load(conn, _wanted_schemas(ctx, st))
        st.reloads += 1


async def get_schema_cache(ctx: Context) -> SchemaCache:
    """The current schema cache, loaded on first use: ``.tables[(schema, name)]`` (``.columns`` with
    ``type``/``nullable``/``default``/``enum``/``identity``/``generated``, ``.pk``, ``.uniques``,
    ``.kind``, ``.computed``), ``.foreign_keys``, ``.functions[(schema, name)]`` (overloads with
    ``args``, ``return_type``, ``returns_set``, ``volatility``), ``.enums``. Treat it as read-only."""
    st = _state(ctx)
    if st.cache is None:
        await reload_schema(ctx)
    assert st.cache is not None
    return st.cache


async def ensure_schema(ctx: Context, schema: str) -> SchemaCache:
    """Make sure ``schema`` is in the cache (for extra schemas such as dynamic-table databases)."""
    st = _state(ctx)
    cache = await get_schema_cache(ctx)
    if schema not in cache.schemas:
        st.extra_schemas.add(schema)
        await reload_schema(ctx)
        cache = await get_schema_cache(ctx)
    return cache


async def handle(
    ctx: Context,
    *,
    method: str,
    schema: str,
    relation: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    auth: AuthContext,
    rpc: bool = False,
    extra_schema: bool = False,
) -> Response:
    """Run one PostgREST request against ``schema.relation`` (or function with ``rpc=True``).

    ``headers`` keys are matched case-insensitively (pass Starlette ``Headers`` or a lower-case
    dict). Always returns a response in PostgREST's shape; never raises for bad input.
    """
    try:
        try:
            if extra_schema:
                cache = await ensure_schema(ctx, schema)
            else:
                if schema not in exposed_schemas(ctx):
                    raise errors.invalid_schema(schema, exposed_schemas(ctx))
                cache = await get_schema_cache(ctx)
        except (TimeoutError, OSError) as exc:
            log.warning("schema cache unavailable: %s", exc)
            raise errors.schema_cache_not_loaded() from None
        except Exception as exc:
            if type(exc).__module__.startswith("asyncpg"):
                log.warning("schema cache unavailable: %s", exc)
                raise errors.schema_cache_not_loaded() from None
            raise
        return await run(ctx, cache, method=method, schema=schema, relation=relation, query=query,
                         headers=_lower(headers), body=body, auth=auth, rpc=rpc)
    except errors.ApiError as exc:
        return exc.response()
    except IdentifierError as exc:  # a name from the request PostgreSQL cannot hold: answered as PostgreSQL would
        return errors.ApiError(400, exc.sqlstate, exc.message).response()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        key = k.lower()
        out[key] = f"{out[key]}, {v}" if key in out and key == "prefer" else v
    return out


# --- lifecycle: NOTIFY listener and fingerprint poll ---------------------------------------------

async def start(ctx: Context) -> None:
    st = _state(ctx)
    try:
        await reload_schema(ctx)
    except Exception:
        log.exception("initial schema cache load failed")
    await _listen(ctx, st)
    st.poller = asyncio.create_task(_poll(ctx, st), name="rest-schema-poll")


async def stop(ctx: Context) -> None:
    st = _state(ctx)
    await cancel_and_wait(st.poller)
    if st.listener is not None:
        try:
            await st.listener.close()
        except Exception:
            log.debug("closing the schema listener failed", exc_info=True)


async def _listen(ctx: Context, st: RestState) -> None:
    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        text = (payload or "").strip().lower()
        if text in ("", "reload schema", "reload"):
            # A burst of DDL (a migration) sends many NOTIFYs: coalesce them into one reload
            # that starts after the ones already running.
            if st.pending is None or st.pending.done():
                st.pending = asyncio.get_running_loop().create_task(_coalesced_reload(ctx, st))
            else:
                st.again = True

    try:
        conn = await connect(ctx.db.owner_url, ctx.settings)
        for channel in CHANNELS:
            await conn.add_listener(channel, on_notify)
        st.listener = conn
    except Exception:
        log.exception("could not LISTEN for schema reloads")
        st.listener = None


async def _coalesced_reload(ctx: Context, st: RestState) -> None:
    while True:
        st.again = False
        await _safe_reload(ctx)
        if not st.again:
            return


async def _safe_reload(ctx: Context) -> None:
    try:
        await reload_schema(ctx)
    except Exception:
        log.exception("schema cache reload failed")


async def _poll(ctx: Context, st: RestState) -> None:
    while not ctx.shutting_down:
        await asyncio.sleep(POLL_SECONDS)
        try:
            if st.listener is None or st.listener.is_closed():
                await _listen(ctx, st)
            cache = st.cache
            schemas = _wanted_schemas(ctx, st)
            async with ctx.db.owner.acquire() as conn:
                fp = await fingerprint(conn, schemas)
            if cache is None or fp != cache.fingerprint or list(cache.schemas) != schemas:
                await reload_schema(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("schema fingerprint poll failed", exc_info=True)

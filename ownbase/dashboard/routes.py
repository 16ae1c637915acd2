"""/dashboard routes: thin handlers over accounts, catalog, ddl, sqlrun and the in-process APIs."""

from __future__ import annotations

import platform
import sys
import uuid

import asyncpg
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import ownbase
from ownbase.context import Context
from ownbase.dashboard import accounts, catalog, ddl, requestlog, sqlrun
from ownbase.dashboard.accounts import Session
from ownbase.dashboard.idents import BadInput
from ownbase.dashboard.web import (
    COOKIE,
    HERE,
    ctx_of,
    err,
    guarded,
    json_body,
    page,
    same_origin,
)
from ownbase.db.pool import connect
from ownbase.service import Service

P = "/dashboard"
PROXY_LIMIT = 25 * 1024 * 1024  # largest API answer relayed to the page (downloads use signed URLs)


# --- access ---------------------------------------------------------------------------------

async def login_page(request: Request) -> Response:
    return page("login.html", error="")


async def login(request: Request) -> Response:
    ctx: Context = ctx_of(request)
    s = ctx.settings
    if not same_origin(request):
        return err(403, "cross-site login refused", "csrf")
    form = await request.form(max_files=0, max_fields=10)
    email = str(form.get("email") or "")[:254].strip().lower()
    ip = request.scope.get("state", {}).get("client_ip") or "?"
    for key in (f"dash-login:ip:{ip}", f"dash-login:email:{email}"):
        decision = await ctx.limiter.hit(key, s.dashboard_login_per_window, s.dashboard_login_window)
        if not decision.allowed:
            return _login_failed("Too many attempts, try again later", 429, decision.retry_after)
    account = await accounts.verify_login(ctx.db.owner, email, str(form.get("password") or ""))
    if account is None:
        return _login_failed("Wrong email or password", 401)
    if account["totp_secret"] and not accounts.totp_ok(account["totp_secret"], str(form.get("code") or "")):
        return _login_failed("A valid authenticator code is needed", 401)
    token = await accounts.open_session(ctx.db.owner, account["id"], s.dashboard_session_ttl)
    resp = RedirectResponse(f"{P}/", status_code=303)
    resp.set_cookie(COOKIE, token, max_age=s.dashboard_session_ttl, httponly=True, samesite="strict",
                    secure=s.api_url.startswith("https://"), path=P)
    return resp


def _login_failed(message: str, status: int, retry_after: int = 0) -> Response:
    resp = page("login.html", error=message)
    resp.status_code = status
    if retry_after:
        resp.headers["retry-after"] = str(retry_after)
    return resp


@guarded()
async def logout(request: Request, session: Session) -> Response:
    await accounts.close_session(ctx_of(request).db.owner, session)
    resp = JSONResponse({"ok": True})
    resp.delete_cookie(COOKIE, path=P)
    return resp


@guarded(html=True)
async def shell(request: Request, session: Session) -> Response:
    ctx: Context = ctx_of(request)
    return page("app.html", csrf=session.csrf_token, email=session.email, api_url=ctx.settings.api_url,
                anon_key=ctx.keys.anon_key)


# --- table editor -----------------------------------------------------------------------------

def _q(request: Request, name: str, default: str = "") -> str:
    return request.query_params.get(name, default)[:500]


@guarded()
async def tables(request: Request, session: Session) -> Response:
    ctx: Context = ctx_of(request)
    found = await catalog.list_tables(ctx.db.owner)
    for t in found:
        t["exposed"] = t["schema"] in ctx.settings.db_schemas  # reachable through /rest/v1
    return JSONResponse({"tables": found})


@guarded()
async def table(request: Request, session: Session) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn:
        info = await catalog.describe(conn, _q(request, "schema", "public"), _q(request, "table"))
    info["templates"] = {k: v["label"] for k, v in ddl.POLICY_TEMPLATES.items()}
    info["exposed"] = info["schema"] in ctx_of(request).settings.db_schemas
    return JSONResponse(_jsonable(info))


_jsonable = sqlrun.jsonable


@guarded()
async def rows(request: Request, session: Session) -> Response:
    params = request.query_params
    async with ctx_of(request).db.owner.acquire() as conn:
        data = await catalog.read_rows(
            conn, _q(request, "schema", "public"), _q(request, "table"), limit=int(params.get("limit", "50")),
            offset=int(params.get("offset", "0")), order=params.get("order") or None,
            filters=[f[:500] for f in params.getlist("filter") if f])
    return JSONResponse(_jsonable(data))


@guarded()
async def row_write(request: Request, session: Session) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadInput("the body must be an object")
    op = request.path_params["op"]
    schema, tbl = body.get("schema") or "public", body.get("table")
    async with ctx_of(request).db.owner.acquire() as conn:
        if op == "insert":
            return JSONResponse(_jsonable({"row": await catalog.insert_row(conn, schema, tbl, body.get("values", {}))}))
        if op == "update":
            return JSONResponse({"updated": await catalog.update_row(conn, schema, tbl, body.get("key"), body.get("values"))})
        if op == "delete":
            return JSONResponse({"deleted": await catalog.delete_rows(conn, schema, tbl, body.get("keys"))})
    raise BadInput("unknown operation")


@guarded()
async def fk_options(request: Request, session: Session) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn:
        values = await catalog.fk_options(conn, _q(request, "schema", "public"), _q(request, "table"),
                                          _q(request, "column"), _q(request, "q"))
    return JSONResponse({"values": values})


_DDL = {"create": lambda b: ddl.create_table(b), "alter": lambda b: ddl.alter_table(b),
        "rls": lambda b: ddl.rls_sql(b.get("schema") or "public", b.get("table"), b.get("enabled")),
        "policy": lambda b: ddl.policy_sql(b),
        "drop_policy": lambda b: ddl.drop_policy_sql(b.get("schema") or "public", b.get("table"), b.get("name"))}


@guarded()
async def ddl_run(request: Request, session: Session) -> Response:
    """Build the statement; with ``"preview": true`` only show it, else run it in one transaction."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadInput("the body must be an object")
    build = _DDL.get(request.path_params["kind"])
    if build is None:
        raise BadInput("unknown kind")
    sql = build(body)
    if body.get("preview"):
        return JSONResponse({"sql": sql})
    async with ctx_of(request).db.owner.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("notify pgrst, 'reload schema'")
        except asyncpg.PostgresError as exc:
            return JSONResponse({"sql": sql, "error": sqlrun.error_json(sql, exc)}, status_code=400)
    return JSONResponse({"sql": sql, "ok": True})


# --- SQL editor -------------------------------------------------------------------------------

@guarded()
async def sql_run(request: Request, session: Session) -> Response:
    body = await json_body(request)
    text = body.get("sql") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text.encode()) > sqlrun.MAX_SQL_BYTES or "\x00" in text:
        raise BadInput("sql: a non-empty statement of at most 1 MB")
    explain = bool(body.get("explain"))
    reason = None if explain else sqlrun.destructive(text)
    if reason and not body.get("confirm"):
        return JSONResponse({"confirm": reason}, status_code=409)
    ctx: Context = ctx_of(request)
    conn = await connect(ctx.settings.database_url, ctx.settings)
    try:
        result = await sqlrun.run(conn, text, explain=explain)
    finally:
        await conn.close()
    return JSONResponse(result, status_code=400 if "error" in result else 200)


@guarded()
async def snippets(request: Request, session: Session) -> Response:
    pool = ctx_of(request).db.owner
    if request.method == "POST":
        body = await json_body(request)
        name, text = (body.get("name"), body.get("sql")) if isinstance(body, dict) else (None, None)
        if not isinstance(name, str) or not isinstance(text, str) or not name.strip() or len(name) > 200 \
                or len(text) > sqlrun.MAX_SQL_BYTES or "\x00" in name + text:
            raise BadInput("a snippet needs a name (<= 200 chars) and sql")
        sid = await pool.fetchval("insert into ownbase_dashboard.snippets (account_id, name, sql)"
                                  " values ($1, $2, $3) returning id::text", session.account_id, name.strip(), text)
        return JSONResponse({"id": sid}, status_code=201)
    if request.method == "DELETE":
        sid = _q(request, "id")
        if not is_uuid(sid):
            raise BadInput("id must be a uuid")
        await pool.execute("delete from ownbase_dashboard.snippets where id = $1::uuid", sid)
        return JSONResponse({"ok": True})
    found = await pool.fetch("select id::text, name, sql, updated_at::text from ownbase_dashboard.snippets"
                             " order by updated_at desc limit 500")
    return JSONResponse({"snippets": [dict(r) for r in found]})


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


# --- auth, storage and API docs through the services' own HTTP APIs (in process) ---------------

PROXY_PREFIXES = {"auth": ("admin/", "settings", "invite", "recover"), "storage": ("bucket", "object/"), "rest": ("",)}


@guarded()
async def proxy(request: Request, session: Session) -> Response:
    """Relay a call to /auth/v1/admin, /storage/v1 or the /rest/v1 OpenAPI document with the service
    key, which stays on the server. Nothing else is reachable this way."""
    service, path = request.path_params["service"], request.path_params["path"]
    allowed = PROXY_PREFIXES.get(service)
    if allowed is None or not any(path.startswith(p) for p in allowed) or ".." in path.split("/"):
        return err(404, "not a proxied path", "not_found")
    if service == "rest" and (path or request.method != "GET"):
        return err(404, "only the OpenAPI document is proxied", "not_found")
    if service == "storage" and request.method == "GET" and not path.startswith(("bucket", "object/info/")):
        # File bytes go to the browser through signed URLs, never buffered here.
        return err(404, "download through a signed URL", "not_found")
    ctx: Context = ctx_of(request)
    key = ctx.keys.service_role_key
    headers = {"apikey": key, "authorization": f"Bearer {key}", "x-client-info": "ownbase-dashboard"}
    for name in ("content-type", "x-upsert", "cache-control", "accept"):
        if name in request.headers:
            headers[name] = request.headers[name]
    transport = httpx.ASGITransport(app=request.app, client=(request.scope.get("state", {}).get("client_ip") or "127.0.0.1", 0))
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.internal", timeout=120) as client:
        upstream = await client.request(request.method, f"/{service}/v1/{path}", params=request.query_params,
                                        content=request.stream() if request.method in ("POST", "PUT", "DELETE") else None,
                                        headers=headers)
    if len(upstream.content) > PROXY_LIMIT:
        return err(413, "answer too large for the dashboard; use a signed URL", "too_large")
    keep = {k: v for k, v in upstream.headers.items() if k in ("content-type", "content-disposition")}
    return Response(upstream.content, status_code=upstream.status_code, headers=keep)


@guarded()
async def user_sessions(request: Request, session: Session) -> Response:
    """A user's sessions (no admin API lists them): read-only, from auth.sessions."""
    uid = _q(request, "id")
    if not is_uuid(uid):
        raise BadInput("id must be a uuid")
    found = await ctx_of(request).db.owner.fetch(
        "select id::text, created_at::text, updated_at::text, aal::text, user_agent, ip::text"
        " from auth.sessions where user_id = $1::uuid order by created_at desc limit 200", uid)
    return JSONResponse({"sessions": [dict(r) for r in found]})


# --- logs and settings -----------------------------------------------------------------------------

@guarded()
async def logs(request: Request, session: Session) -> Response:
    ring: requestlog.RequestRing | None = ctx_of(request).state.get("dashboard_log")
    if ring is None:
        return JSONResponse({"requests": []})
    q = request.query_params
    found = ring.query(search=_q(request, "q"), service=_q(request, "service"),
                       min_status=int(q.get("min_status", "0") or 0), slow_ms=float(q.get("slow_ms", "0") or 0))
    return JSONResponse({"requests": found})


@guarded()
async def slow(request: Request, session: Session) -> Response:
    async with ctx_of(request).db.owner.acquire() as conn:
        return JSONResponse(await catalog.slow_queries(conn))


@guarded()
async def settings_info(request: Request, session: Session) -> Response:
    ctx: Context = ctx_of(request)
    s = ctx.settings
    pool = ctx.db.owner
    migrations = await pool.fetch("select version, name, applied_at::text from ownbase.migrations order by version")
    pg_version = await pool.fetchval("show server_version")
    auth = {k: v for k, v in s.model_dump().items()
            if k.startswith(("auth_", "site_url", "jwt_aud")) and not any(w in k for w in ("secret", "password", "key"))}
    return JSONResponse(_jsonable({
        "api_url": s.api_url, "anon_key": ctx.keys.anon_key, "jwks_url": f"{s.api_url}/auth/v1/.well-known/jwks.json",
        "jwt_algorithm": ctx.keys.signing_algorithm, "storage_backend": s.storage_backend,
        "mail_backend": s.mail_backend, "redis": bool(s.redis_url), "workers": s.workers,
        "versions": {"ownbase": ownbase.__version__, "postgresql": pg_version, "python": sys.version.split()[0],
                     "platform": platform.platform()},
        "migrations": [dict(r) for r in migrations], "auth_settings": auth}))


@guarded()
async def service_key(request: Request, session: Session) -> Response:
    """The service key is revealed only on a deliberate click (a POST with the CSRF token)."""
    return JSONResponse({"service_role_key": ctx_of(request).keys.service_role_key})


async def _startup(ctx: Context) -> None:
    if not ctx.settings.dashboard:
        return
    ring = requestlog.RequestRing(ctx.settings.dashboard_log_size)
    ctx.state["dashboard_log"] = ring
    ctx.access_sink = ring.add


async def _shutdown(ctx: Context) -> None:
    if ctx.state.pop("dashboard_log", None) is not None:
        ctx.access_sink = None


async def _root(request: Request) -> Response:
    return RedirectResponse(f"{P}/", status_code=307)


ROUTES: list[BaseRoute] = [
    Route(P, _root),
    Route(f"{P}/", shell),
    Route(f"{P}/login", login_page, methods=["GET"]),
    Route(f"{P}/login", login, methods=["POST"]),
    Route(f"{P}/logout", logout, methods=["POST"]),
    Route(f"{P}/api/tables", tables),
    Route(f"{P}/api/table", table),
    Route(f"{P}/api/rows", rows),
    Route(f"{P}/api/rows/{{op}}", row_write, methods=["POST"]),
    Route(f"{P}/api/fk-options", fk_options),
    Route(f"{P}/api/ddl/{{kind}}", ddl_run, methods=["POST"]),
    Route(f"{P}/api/sql", sql_run, methods=["POST"]),
    Route(f"{P}/api/snippets", snippets, methods=["GET", "POST", "DELETE"]),
    Route(f"{P}/api/proxy/{{service}}/{{path:path}}", proxy, methods=["GET", "POST", "PUT", "DELETE"]),
    Route(f"{P}/api/user-sessions", user_sessions),
    Route(f"{P}/api/logs", logs),
    Route(f"{P}/api/slow-queries", slow),
    Route(f"{P}/api/settings", settings_info),
    Route(f"{P}/api/service-key", service_key, methods=["POST"]),
    Mount(f"{P}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static"),
]

SERVICE = Service("dashboard", routes=ROUTES, startup=_startup, shutdown=_shutdown)

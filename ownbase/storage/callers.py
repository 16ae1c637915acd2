"""Who is asking: the process's Storage and the Caller of a request, shared by the storage
routes and the TUS routes."""

from __future__ import annotations

from starlette.requests import Request

from ownbase.context import Context
from ownbase.http.auth_context import CredentialError, resolve
from ownbase.storage import errors
from ownbase.storage.service import Caller, Storage


def storage_of(request: Request) -> Storage:
    ctx: Context = request.app.state.ctx
    return ctx.state["storage"]  # type: ignore[no-any-return]


def caller_of(request: Request) -> Caller:
    ctx: Context = request.app.state.ctx
    try:
        auth = resolve(ctx.keys, request.headers, request.query_params.get("apikey"))
    except CredentialError as exc:
        raise errors.access_denied(exc.message) from None
    return Caller(auth=auth, method=request.method, path=request.url.path, headers=dict(request.headers))

"""Auth start-up: per-process state and the optional Cognito token verifier."""

from __future__ import annotations

from ownbase.context import Context


async def startup(ctx: Context) -> None:
    ctx.state.setdefault("auth", {})
    if ctx.settings.auth_cognito_user_pool_id or ctx.settings.auth_cognito_issuer:
        from ownbase.auth.cognito import install

        await install(ctx)


async def shutdown(ctx: Context) -> None:
    state = ctx.state.get("auth") or {}
    cognito = state.get("cognito")
    if cognito is not None:
        cognito.close()

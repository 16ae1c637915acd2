"""Auth start-up: per-process state and the optional Cognito token verifier."""

from __future__ import annotations

from ownbase.auth import captcha, hooks, mfa, phone
from ownbase.auth.passwords import warm_up
from ownbase.context import Context


async def startup(ctx: Context) -> None:
    ctx.state.setdefault("auth", {})

    hooks.validate(ctx.settings)  # a malformed hook, CAPTCHA or test-OTP setting stops start-up
    if hooks.configured(ctx, "mfa_verification_attempt") is not None:
        # Only when configured: otherwise a hook installed another way (tests) stays in place.
        mfa.set_verification_attempt_hook(hooks.mfa_verification_attempt)
    captcha.validate(ctx.settings)
    phone.validate(ctx.settings)
    # Compute the timing-equaliser hash now, in the background, not on the first unknown sign-in.
    warm_up(ctx.settings.auth_bcrypt_cost)
    if ctx.settings.auth_cognito_user_pool_id or ctx.settings.auth_cognito_issuer:
        from ownbase.auth.cognito import install  # noqa: PLC0415 - only with Cognito settings

        await install(ctx)


async def shutdown(ctx: Context) -> None:
    state = ctx.state.get("auth") or {}
    cognito = state.get("cognito")
    if cognito is not None:
        cognito.close()

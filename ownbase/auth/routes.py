"""GoTrue-shaped HTTP routes under /auth/v1: thin wrappers that render AuthError in GoTrue's shape."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ownbase.auth import account, admin, grants, mails, signup, verify
from ownbase.auth.errors import AuthError, render, unexpected
from ownbase.auth.lifecycle import shutdown, startup
from ownbase.http.errors import generic_status
from ownbase.service import Service

log = logging.getLogger("ownbase.auth")
Handler = Callable[[Request], Awaitable[Any]]

OAUTH_PROVIDERS = ("apple", "azure", "bitbucket", "discord", "facebook", "snapchat", "figma", "fly", "github",
                   "gitlab", "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify",
                   "slack", "slack_oidc", "workos", "twitch", "twitter", "zoom")


def gotrue(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except AuthError as err:
            return render(request, err)
        except Exception as exc:  # noqa: BLE001 - GoTrue's 500 shape instead of a bare crash
            if generic_status(exc) is not None:
                raise  # the http layer answers (503 / 400) in GoTrue's shape
            log.exception("auth request failed")
            return render(request, unexpected())
        response = result if isinstance(result, Response) else JSONResponse(result)
        if request.headers.get("x-supabase-api-version"):
            response.headers["x-supabase-api-version"] = "2024-01-01"
        return response

    return endpoint


async def health(request: Request) -> Response:
    return JSONResponse({"version": "ownbase", "name": "GoTrue", "description": "ownbase auth"})


async def settings_route(request: Request) -> Response:
    s = request.app.state.ctx.settings
    external: dict[str, bool] = {"anonymous_users": s.auth_anonymous_signins}
    external.update({name: False for name in OAUTH_PROVIDERS})
    external.update({"email": True, "phone": False})
    return JSONResponse({
        "external": external,
        "disable_signup": s.auth_disable_signup,
        "mailer_autoconfirm": s.auth_autoconfirm,
        "phone_autoconfirm": False,
        "sms_provider": "",
        "saml_enabled": False,
        "saml_private_key_next_configured": False,
        "passkeys_enabled": False,
    })


async def jwks(request: Request) -> Response:
    return JSONResponse(request.app.state.ctx.keys.jwks(),
                        headers={"cache-control": "public, max-age=600"})


async def authorize(request: Request) -> Any:
    # signInWithOAuth sends the browser here; ownbase has no OAuth providers (see docs/auth.md).
    raise AuthError(400, "provider_disabled", "Unsupported provider: provider is not enabled")


async def _verify(request: Request) -> Any:
    if request.method == "GET":
        return await verify.verify_get(request)
    return await verify.verify_post(request)


async def _user(request: Request) -> Any:
    if request.method == "GET":
        return await account.get_user(request)
    return await account.put_user(request)


async def _admin_users(request: Request) -> Any:
    if request.method == "GET":
        return await admin.list_users(request)
    return await admin.create_user(request)


async def _admin_user(request: Request) -> Any:
    return await {"GET": admin.get_user, "PUT": admin.update_user,
                  "DELETE": admin.delete_user}[request.method](request)


P = "/auth/v1"
SERVICE = Service(
    name="auth",
    routes=[
        Route(f"{P}/health", health),
        Route(f"{P}/settings", settings_route),
        Route(f"{P}/.well-known/jwks.json", jwks),
        Route(f"{P}/authorize", gotrue(authorize), methods=["GET"]),
        Route(f"{P}/signup", gotrue(signup.signup), methods=["POST"]),
        Route(f"{P}/token", gotrue(grants.token), methods=["POST"]),
        Route(f"{P}/otp", gotrue(mails.otp_route), methods=["POST"]),
        Route(f"{P}/magiclink", gotrue(mails.otp_route), methods=["POST"]),
        Route(f"{P}/verify", gotrue(_verify), methods=["GET", "POST"]),
        Route(f"{P}/recover", gotrue(mails.recover), methods=["POST"]),
        Route(f"{P}/resend", gotrue(mails.resend), methods=["POST"]),
        Route(f"{P}/user", gotrue(_user), methods=["GET", "PUT"]),
        Route(f"{P}/reauthenticate", gotrue(account.reauthenticate), methods=["GET"]),
        Route(f"{P}/logout", gotrue(account.logout), methods=["POST"]),
        Route(f"{P}/invite", gotrue(admin.invite), methods=["POST"]),
        Route(f"{P}/admin/users", gotrue(_admin_users), methods=["GET", "POST"]),
        Route(f"{P}/admin/users/{{user_id}}", gotrue(_admin_user), methods=["GET", "PUT", "DELETE"]),
        Route(f"{P}/admin/generate_link", gotrue(admin.generate_link), methods=["POST"]),
    ],
    startup=startup,
    shutdown=shutdown,
)

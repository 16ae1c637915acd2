"""GoTrue-shaped HTTP routes under /auth/v1: thin wrappers that render AuthError in GoTrue's shape."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route

from ownbase.auth import (account, admin, disabled, grants, identities, mails, mfa, oauth, passkeys, providers,
                          signup, verify)
from ownbase.auth.errors import AuthError, OAuthError, render, unexpected
from ownbase.auth.lifecycle import shutdown, startup
from ownbase.http.errors import generic_status
from ownbase.service import Service

log = logging.getLogger("ownbase.auth")
Handler = Callable[[Request], Awaitable[Any]]

OAUTH_PROVIDERS = ("apple", "azure", "bitbucket", "discord", "facebook", "snapchat", "figma", "fly", "github",
                   "gitlab", "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify",
                   "slack", "slack_oidc", "workos", "twitch", "twitter", "zoom")
# Providers GoTrue knows but does not list in /settings.
OTHER_PROVIDERS = ("x", "vercel_marketplace")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


def gotrue(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except AuthError as err:
            return render(request, err)
        except OAuthError as err:
            return err.response()
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
    external.update({name: True for name in providers.enabled_names(s) if name in external})
    external.update({"email": True, "phone": s.auth_phone_enabled})
    return JSONResponse({
        "external": external,
        "disable_signup": s.auth_disable_signup,
        "mailer_autoconfirm": s.auth_autoconfirm,
        "phone_autoconfirm": s.auth_sms_autoconfirm,
        "sms_provider": s.auth_sms_provider if s.auth_phone_enabled else "",
        "saml_enabled": False,
        "saml_private_key_next_configured": False,
        "passkeys_enabled": s.auth_passkey_enabled,
    })


async def jwks(request: Request) -> Response:
    return JSONResponse(request.app.state.ctx.keys.jwks(),
                        headers={"cache-control": "public, max-age=600"})


async def authorize(request: Request) -> Any:
    return await oauth.authorize(request, OAUTH_PROVIDERS + OTHER_PROVIDERS)


async def link_identity(request: Request) -> Any:
    return await identities.link_authorize(request, OAUTH_PROVIDERS + OTHER_PROVIDERS)


async def fallback(request: Request) -> Response:
    """GoTrue (chi) for paths it has no route for: a plain-text 404; for a known path with another
    method: 405 with an empty body and one Allow header per method."""
    allowed: list[str] = []
    for route in SERVICE.routes:
        if not isinstance(route, Route) or route.endpoint is fallback or route.name == PASSKEY_CATCH_ALL:
            continue
        match, _ = route.matches({**request.scope, "method": "\0"})  # path only: no method matches
        if match != Match.NONE:
            allowed.extend(m for m in sorted(route.methods or ()) if m != "HEAD" and m not in allowed)
    if allowed:
        response = Response(status_code=405)
        for method in allowed:
            response.headers.append("allow", method)
        return response
    return PlainTextResponse("404 page not found\n", status_code=404,
                             headers={"x-content-type-options": "nosniff"})


PASSKEY_CATCH_ALL = "passkeys_other"


async def _passkeys_other(request: Request) -> Any:
    """Unknown /passkeys paths or methods: passkey_disabled while off (GoTrue's group check runs
    first), else chi's 404/405."""
    if not request.app.state.ctx.settings.auth_passkey_enabled:
        raise passkeys.disabled_error()
    return await fallback(request)


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
        # OAuth / OIDC providers and identity linking (oauth.py, identities.py).
        Route(f"{P}/callback", gotrue(oauth.callback), methods=["GET", "POST"]),
        Route(f"{P}/user/identities/authorize", gotrue(link_identity), methods=["GET"]),
        Route(f"{P}/user/identities/{{identity_id}}", gotrue(identities.unlink), methods=["DELETE"]),
        # GoTrue features that are off or not built here: GoTrue's answers (disabled.py).
        Route(f"{P}/sso", gotrue(disabled.saml), methods=["POST"]),
        Route(f"{P}/sso/saml/metadata", gotrue(disabled.saml), methods=["GET"]),
        Route(f"{P}/sso/saml/acs", gotrue(disabled.saml), methods=["POST"]),
        Route(f"{P}/user/oauth/grants", gotrue(disabled.user_oauth_grants), methods=ALL_METHODS),
        # MFA (mfa.py) and passkeys (passkeys.py); the passkey catch-alls answer passkey_disabled first.
        Route(f"{P}/factors", gotrue(mfa.enroll), methods=["POST"]),
        Route(f"{P}/factors/{{factor_id}}/challenge", gotrue(mfa.challenge), methods=["POST"]),
        Route(f"{P}/factors/{{factor_id}}/verify", gotrue(mfa.verify), methods=["POST"]),
        Route(f"{P}/factors/{{factor_id}}", gotrue(mfa.unenroll), methods=["DELETE"]),
        Route(f"{P}/passkeys", gotrue(passkeys.gated(passkeys.list_mine)), methods=["GET"]),
        Route(f"{P}/passkeys/registration/options", gotrue(passkeys.gated(passkeys.registration_options)),
              methods=["POST"]),
        Route(f"{P}/passkeys/registration/verify", gotrue(passkeys.gated(passkeys.registration_verify)),
              methods=["POST"]),
        Route(f"{P}/passkeys/authentication/options", gotrue(passkeys.gated(passkeys.authentication_options)),
              methods=["POST"]),
        Route(f"{P}/passkeys/authentication/verify", gotrue(passkeys.gated(passkeys.authentication_verify)),
              methods=["POST"]),
        Route(f"{P}/passkeys/{{passkey_id}}", gotrue(passkeys.gated(passkeys.update)), methods=["PATCH"]),
        Route(f"{P}/passkeys/{{passkey_id}}", gotrue(passkeys.gated(passkeys.delete)), methods=["DELETE"]),
        Route(f"{P}/passkeys", gotrue(_passkeys_other), methods=ALL_METHODS, name=PASSKEY_CATCH_ALL),
        Route(f"{P}/passkeys/{{rest:path}}", gotrue(_passkeys_other), methods=ALL_METHODS, name=PASSKEY_CATCH_ALL),
        Route(f"{P}/oauth/{{rest:path}}", gotrue(disabled.oauth_server), methods=ALL_METHODS),
        Route(f"{P}/.well-known/oauth-authorization-server", gotrue(disabled.oauth_server), methods=ALL_METHODS),
        Route(f"{P}/scim/v2/{{rest:path}}", gotrue(disabled.scim), methods=ALL_METHODS),
        Route(f"{P}/admin/oauth/{{rest:path}}", gotrue(disabled.admin_oauth_server), methods=ALL_METHODS),
        Route(f"{P}/admin/custom-providers", gotrue(disabled.admin_custom_providers), methods=ALL_METHODS),
        Route(f"{P}/admin/custom-providers/{{rest:path}}", gotrue(disabled.admin_custom_providers),
              methods=ALL_METHODS),
        Route(f"{P}/admin/sso/providers", gotrue(disabled.admin_sso_providers), methods=["GET", "POST"]),
        Route(f"{P}/admin/sso/providers/{{idp_id}}", gotrue(disabled.admin_sso_provider),
              methods=["GET", "PUT", "DELETE"]),
        Route(f"{P}/admin/users/{{user_id}}/factors", gotrue(mfa.admin_factors), methods=["GET"]),
        Route(f"{P}/admin/users/{{user_id}}/factors/{{factor_id}}", gotrue(mfa.admin_factor),
              methods=["PUT", "DELETE"]),
        Route(f"{P}/admin/users/{{user_id}}/passkeys", gotrue(passkeys.admin_list), methods=["GET"]),
        Route(f"{P}/admin/users/{{user_id}}/passkeys/{{passkey_id}}", gotrue(passkeys.admin_delete),
              methods=["DELETE"]),
    ],
    startup=startup,
    shutdown=shutdown,
)
# Last, so every route above is tried first (Starlette takes the first full match).
SERVICE.routes += [Route(P, fallback, methods=ALL_METHODS), Route(f"{P}/{{rest:path}}", fallback, methods=ALL_METHODS)]

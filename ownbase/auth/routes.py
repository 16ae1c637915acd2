"""GoTrue-shaped HTTP routes (foundation stub: health, settings, JWKS)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ownbase.service import Service


async def health(request: Request) -> Response:
    return JSONResponse({"version": "ownbase", "name": "GoTrue", "description": "ownbase auth"})


async def settings_route(request: Request) -> Response:
    s = request.app.state.ctx.settings
    return JSONResponse({
        "external": {"email": True, "phone": False, "anonymous_users": s.auth_anonymous_signins},
        "disable_signup": s.auth_disable_signup,
        "mailer_autoconfirm": s.auth_autoconfirm,
        "phone_autoconfirm": False,
        "sms_provider": "",
        "saml_enabled": False,
    })


async def jwks(request: Request) -> Response:
    return JSONResponse(request.app.state.ctx.keys.jwks(),
                        headers={"cache-control": "public, max-age=600"})


SERVICE = Service(
    name="auth",
    routes=[
        Route("/auth/v1/health", health),
        Route("/auth/v1/settings", settings_route),
        Route("/auth/v1/.well-known/jwks.json", jwks),
    ],
)

"""GoTrue's error catalog and its two wire shapes.

Clients that send ``X-Supabase-Api-Version: 2024-01-01`` (supabase-js, supabase-py) get
``{"code": "<error_code>", "message": ...}``; older clients get ``{"code": <status>, "error_code",
"msg"}``. Both carry the ``x-sb-error-code`` header.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

API_VERSION = "2024-01-01"


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, sb_header: bool = True) -> None:
        super().__init__(message)
        self.sb_header = sb_header  # False for errors a hook returned: GoTrue sends no x-sb-error-code
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


class OAuthError(Exception):
    """GoTrue's OAuth-style error (id_token grant): always 400, ``{error, error_description}``,
    the same in both API versions, with no error_code and no x-sb-error-code header."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description}, status_code=400)


def render(request: Request, err: AuthError) -> JSONResponse:
    new_shape = request.headers.get("x-supabase-api-version", "") >= API_VERSION
    headers = dict(err.headers)
    if new_shape:
        body: dict[str, Any] = {"code": err.code, "message": err.message, **err.extra}
        headers["x-supabase-api-version"] = API_VERSION
    else:
        body = {"code": err.status, "error_code": err.code, "msg": err.message, **err.extra}
    if err.sb_header and not (new_shape and err.code == "weak_password"):
        headers["x-sb-error-code"] = err.code
    return JSONResponse(body, status_code=err.status, headers=headers)


# --- small constructors: one per catalog entry the routes use ---------------------------
def validation(message: str, status: int = 400) -> AuthError:
    return AuthError(status, "validation_failed", message)


def bad_json(detail: str) -> AuthError:
    return AuthError(400, "bad_json", f"Could not parse request body as JSON: {detail}")


def weak_password(min_length: int) -> AuthError:
    msg = f"Password should be at least {min_length} characters."
    return AuthError(422, "weak_password", msg, extra={"weak_password": {"reasons": ["length"]}})


def invalid_credentials() -> AuthError:
    return AuthError(400, "invalid_credentials", "Invalid login credentials")


def email_not_confirmed() -> AuthError:
    return AuthError(400, "email_not_confirmed", "Email not confirmed")


def email_exists() -> AuthError:
    return AuthError(422, "email_exists", "A user with this email address has already been registered")


def user_already_exists() -> AuthError:
    return AuthError(422, "user_already_exists", "User already registered")


def otp_expired(link: bool = False) -> AuthError:
    msg = "Email link is invalid or has expired" if link else "Token has expired or is invalid"
    return AuthError(403, "otp_expired", msg)


def rate_limited(retry_after: int) -> AuthError:
    return AuthError(429, "over_request_rate_limit", "Request rate limit reached",
                     headers={"retry-after": str(max(1, retry_after))})


def email_rate_limited() -> AuthError:
    return AuthError(429, "over_email_send_rate_limit", "email rate limit exceeded")


def send_interval(seconds: int) -> AuthError:
    return AuthError(429, "over_email_send_rate_limit",
                     f"For security purposes, you can only request this after {seconds} seconds.")


def no_authorization() -> AuthError:
    return AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")


def bad_jwt(detail: str) -> AuthError:
    return AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {detail}")


def not_admin() -> AuthError:
    return AuthError(403, "not_admin", "User not allowed")


def user_not_found(admin: bool = False) -> AuthError:
    if admin:
        return AuthError(404, "user_not_found", "User not found")
    return AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")


def session_not_found() -> AuthError:
    return AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")


def refresh_not_found() -> AuthError:
    return AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")


def refresh_already_used() -> AuthError:
    return AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")


def refresh_session_expired() -> AuthError:
    return AuthError(400, "session_expired", "Invalid Refresh Token: Session Expired")


def refresh_no_session() -> AuthError:
    return AuthError(400, "session_not_found", "Invalid Refresh Token: No Valid Session Found")


def user_banned() -> AuthError:
    return AuthError(400, "user_banned", "User is banned")


def signup_disabled() -> AuthError:
    return AuthError(422, "signup_disabled", "Signups not allowed for this instance")


def otp_disabled() -> AuthError:
    return AuthError(422, "otp_disabled", "Signups not allowed for otp")


def anonymous_disabled() -> AuthError:
    return AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")


def phone_disabled(action: str = "signups", status: int = 400) -> AuthError:
    """GoTrue's wording differs per route: /signup "Phone signups are disabled", /resend "Phone
    logins are disabled", the password grant the same with 422, /otp "Unsupported phone provider"."""
    if action == "provider":
        return AuthError(status, "phone_provider_disabled", "Unsupported phone provider")
    return AuthError(status, "phone_provider_disabled", f"Phone {action} are disabled")


def invalid_phone() -> AuthError:
    return validation("Invalid phone number format (E.164 required)")


def same_password() -> AuthError:
    return AuthError(422, "same_password", "New password should be different from the old password.")


def reauthentication_needed() -> AuthError:
    return AuthError(400, "reauthentication_needed", "Password update requires reauthentication")


def reauthentication_not_valid() -> AuthError:
    return AuthError(422, "reauthentication_not_valid", "Nonce has expired or is invalid")


def phone_exists() -> AuthError:
    return AuthError(422, "phone_exists", "A user with this phone number has already been registered")


def phone_not_confirmed() -> AuthError:
    return AuthError(400, "phone_not_confirmed", "Phone not confirmed")


def sms_rate_limited(seconds: int | None = None) -> AuthError:
    if seconds is None:
        return AuthError(429, "over_sms_send_rate_limit", "SMS rate limit exceeded")
    return AuthError(429, "over_sms_send_rate_limit",
                     f"For security purposes, you can only request this after {seconds} seconds.")


def captcha_failed(reason: str) -> AuthError:
    return AuthError(400, "captcha_failed", f"captcha protection: request disallowed ({reason})")


def unexpected() -> AuthError:
    return AuthError(500, "unexpected_failure",
                     "Unexpected failure, please check server logs for more information")

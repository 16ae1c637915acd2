"""The API key check Supabase's gateway does before any service sees a request.

Every request under a service prefix must carry one of the project's API keys, in the ``apikey``
header or query parameter, whatever its ``Authorization`` says: so a rotated key locks out clients
that still hold the old one. The project's keys are the anon and service-role keys (ownbase's own or
fixed ones, or any token signed by the project whose role is ``anon`` or ``service_role``, e.g. a
migrated project's keys), and the ``sb_publishable_…`` / ``sb_secret_…`` keys. A secret key is
refused from a browser (a ``Mozilla/`` User-Agent or an ``Origin`` header), as Supabase does.

What Supabase serves without a key stays keyless: the email-link and OAuth redirects, JWKS, health,
public and signed object URLs, signed uploads (``KEYLESS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ownbase.keys import KeyRing, TokenError

GUARDED = ("/auth/v1", "/rest/v1", "/storage/v1", "/realtime/v1/api", "/db/v1", "/graphql/v1",
           "/functions/v1")
API_KEY_ROLES = ("anon", "service_role")

_ANY = None
KEYLESS: tuple[tuple[frozenset[str] | None, re.Pattern[str]], ...] = tuple(
    (frozenset(methods.split()) if methods else _ANY, re.compile(pattern)) for methods, pattern in (
        # GoTrue's links and redirects are opened by a browser or a mail client.
        ("", r"/auth/v1/(verify|callback|authorize)/?"),
        ("", r"/auth/v1/sso/saml/(acs|metadata)/?"),
        ("GET HEAD", r"/auth/v1/(health|settings|\.well-known/.*)"),
        # Storage URLs handed to browsers: public objects, signed URLs, signed uploads.
        ("GET HEAD", r"/storage/v1/(object|render/image)/(public|sign)/.+"),
        ("GET HEAD", r"/storage/v1/object/info/public/.+"),
        ("PUT", r"/storage/v1/object/upload/sign/.+"),
        ("", r"/storage/v1/upload/resumable/sign(/.*)?"),
    ))


@dataclass(frozen=True)
class KeyProblem:
    status: int
    code: str
    message: str
    hint: str
    rest_code: str = "PGRST301"  # the code in PostgREST-shaped bodies (/rest/v1, /db/v1)

    def code_for(self, path: str) -> str:
        return self.rest_code if path.startswith(("/rest/", "/db/")) else self.code


MISSING = KeyProblem(401, "no_api_key", "No API key found in request",
                     "No `apikey` request header or url param was found.", "PGRST302")
INVALID = KeyProblem(401, "invalid_api_key", "Invalid API key",
                     "Double check your Supabase `anon` or `service_role` API key.")
SECRET_IN_BROWSER = KeyProblem(
    401, "secret_key_in_browser", "Forbidden use of secret API key in browser",
    "Secret API keys can only be used in a protected environment and should never be used in a "
    "browser. Use a publishable key instead.")


def guarded(method: str, path: str) -> bool:
    if not path.startswith(GUARDED):
        return False
    for methods, pattern in KEYLESS:
        if (methods is None or method in methods) and pattern.fullmatch(path):
            return False
    return True


def query_apikey(query_string: bytes) -> str | None:
    if b"apikey=" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1")):
        if name == "apikey":
            return value
    return None


def from_browser(user_agent: str | None, origin: str | None) -> bool:
    return origin is not None or (user_agent or "").startswith("Mozilla/")


class KeyCheck:
    """Decides whether a request's API key is one of the project's; built once per key ring."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys
        self._known = frozenset({keys.anon_key, keys.service_role_key, *keys.publishable_keys,
                                 *keys.secret_keys})

    def valid(self, apikey: str) -> bool:
        if apikey in self._known:
            return True
        if apikey.startswith("sb_") or apikey.count(".") != 2:
            return False
        try:
            claims = self.keys.verify(apikey)  # cached per token
        except TokenError:
            return False
        return claims.get("role") in API_KEY_ROLES

    def problem(self, apikey: str | None, bearer: str | None, user_agent: str | None,
                origin: str | None) -> KeyProblem | None:
        if not apikey:
            return MISSING
        if not self.valid(apikey):
            return INVALID
        secret = self.keys.secret_keys
        if secret and (apikey in secret or bearer in secret) and from_browser(user_agent, origin):
            return SECRET_IN_BROWSER
        return None

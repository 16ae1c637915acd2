"""Local stand-ins for sign-in providers, as real HTTP servers on 127.0.0.1:

- an OpenID Connect provider: ``oidc-provider-mock`` (authlib), with discovery, JWKS, real RS256
  ID tokens, userinfo and an authorization form, plus a test-only ``/test/mint`` route that signs
  arbitrary claims with the provider's own key (expired or wrong-audience ID tokens);
- an OAuth 2.0 provider without OIDC that lays out its endpoints as GitHub Enterprise
  (authorize, access_token, /api/v3/user, /api/v3/user/emails), GitLab and Discord do.

A ``Browser`` follows redirects the way a browser does (cookies kept, form posted) until the
flow lands on the app's URL.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import flask
import httpx
import oidc_provider_mock
import werkzeug.serving
from authlib.jose import jwt as authlib_jwt


@contextmanager
def serve(app: Any) -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in test output
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def oidc_app() -> flask.Flask:
    app = oidc_provider_mock.app()

    @app.post("/test/mint")
    def mint() -> Any:  # signs the posted claims with the provider's signing key
        storage = flask.g.oidc_provider_mock_storage
        claims = flask.request.get_json()
        header = {"alg": "RS256", "kid": storage.jwk.as_dict()["kid"]}
        token = authlib_jwt.encode(header, claims, storage.jwk.as_dict(is_private=True))
        return {"id_token": token.decode()}

    return app


@contextmanager
def oidc_provider() -> Iterator[str]:
    with serve(oidc_app()) as url:
        yield url


def set_user(provider_url: str, sub: str, claims: dict[str, Any]) -> None:
    r = httpx.put(f"{provider_url}/users/{sub}", json=claims, timeout=10)
    assert r.status_code == 204, r.text


def mint(provider_url: str, claims: dict[str, Any]) -> str:
    now = int(time.time())
    full = {"iss": provider_url, "iat": now, "exp": now + 600, **claims}
    return str(httpx.post(f"{provider_url}/test/mint", json=full, timeout=10).json()["id_token"])


# --- a GitHub-style provider -------------------------------------------------------------------

@dataclass
class GitHubUser:
    id: int
    login: str
    emails: list[dict[str, Any]]
    name: str = ""


@dataclass
class GitHubStandIn:
    client_id: str = "gh-client"
    client_secret: str = "gh-secret"
    users: dict[str, GitHubUser] = field(default_factory=dict)  # login -> user
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (login, redirect_uri)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> login

    def app(self) -> flask.Flask:
        app = flask.Flask("github-standin")

        # GitHub's paths; GitLab's and Discord's layouts share the handlers (same users).
        @app.get("/login/oauth/authorize")
        @app.get("/oauth/authorize", endpoint="gitlab_authorize")
        @app.get("/api/oauth2/authorize", endpoint="discord_authorize")
        def authorize() -> Any:
            args = flask.request.args
            if args.get("client_id") != self.client_id:
                return "unknown client", 400
            login = flask.request.cookies.get("gh_login") or args.get("login_hint", "")
            if login not in self.users:
                return "who are you?", 401
            code = secrets.token_hex(10)
            self.codes[code] = (login, args["redirect_uri"])
            sep = "&" if "?" in args["redirect_uri"] else "?"
            return flask.redirect(args["redirect_uri"] + sep + urlencode({"code": code, "state": args["state"]}))

        @app.post("/login/oauth/access_token")
        @app.post("/oauth/token", endpoint="gitlab_token")
        @app.post("/api/oauth2/token", endpoint="discord_token")
        def token() -> Any:
            form = flask.request.form
            if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                return {"error": "incorrect_client_credentials"}
            entry = self.codes.pop(form.get("code", ""), None)  # one use only, as GitHub
            if entry is None or entry[1] != form.get("redirect_uri"):
                return {"error": "bad_verification_code"}
            access = "gho_" + secrets.token_hex(12)
            self.tokens[access] = entry[0]
            return {"access_token": access, "token_type": "bearer", "scope": "user:email"}

        def caller() -> GitHubUser | None:
            auth = flask.request.headers.get("authorization", "")
            login = self.tokens.get(auth.partition(" ")[2])
            return self.users.get(login) if login else None

        @app.get("/api/v3/user")
        def user() -> Any:
            u = caller()
            if u is None:
                return {"message": "Bad credentials"}, 401
            return {"id": u.id, "login": u.login, "name": u.name, "avatar_url": f"https://avatars.example/{u.id}"}

        @app.get("/api/v3/user/emails")
        def emails() -> Any:
            u = caller()
            if u is None:
                return {"message": "Bad credentials"}, 401
            return flask.jsonify(u.emails)

        @app.get("/api/v4/user")
        def gitlab_user() -> Any:
            u = caller()
            if u is None:
                return {"message": "401 Unauthorized"}, 401
            primary = u.emails[0]
            return {"id": u.id, "username": u.login, "name": u.name, "email": primary["email"],
                    "avatar_url": None, "confirmed_at": "2024-01-01T00:00:00Z" if primary["verified"] else None}

        @app.get("/api/users/@me")
        def discord_user() -> Any:
            u = caller()
            if u is None:
                return {"message": "401: Unauthorized", "code": 0}, 401
            primary = u.emails[0]
            return {"id": str(u.id), "username": u.login, "global_name": u.name, "avatar": "abc",
                    "email": primary["email"], "verified": primary["verified"]}

        return app


# --- a browser ---------------------------------------------------------------------------------

class Browser:
    """Follows redirects with a cookie jar until the URL leaves the servers (lands on the app)."""

    def __init__(self, stop_prefixes: tuple[str, ...] = ("http://app.example", "http://site.example")) -> None:
        self.http = httpx.Client(timeout=30, follow_redirects=False)
        self.stop = stop_prefixes

    def close(self) -> None:
        self.http.close()

    def go(self, url: str, *, sub: str | None = None, max_hops: int = 12) -> str:
        """Navigate to ``url``; answer the OIDC provider's consent form with ``sub``."""
        response: httpx.Response | None = None
        for _ in range(max_hops):
            if url.startswith(self.stop):
                return url
            response = self.http.get(url)
            if response.status_code == 200 and "<form" in response.text and sub is not None:
                response = self.http.post(url, data={"sub": sub})
            if response.status_code in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers["location"])
                continue
            raise AssertionError(f"stuck at {url}: {response.status_code} {response.text[:500]}")
        raise AssertionError("too many redirects")

    def to_provider(self, url: str) -> str:
        """Only the first hop: ownbase's /authorize answer (the provider URL, cookie kept)."""
        response = self.http.get(url)
        assert response.status_code == 302, response.text
        return str(response.headers["location"])


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def fragment_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment, keep_blank_values=True).items()}

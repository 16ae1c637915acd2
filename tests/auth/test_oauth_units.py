"""Provider defaults, issuer rules and identity data, without servers (the flows are in test_oauth.py)."""

from __future__ import annotations

import pytest

from ownbase.auth import oidc, profiles, providers
from ownbase.auth.errors import AuthError
from ownbase.settings import Settings

KNOWN = ("google", "github", "gitlab", "azure", "apple", "discord", "twitch")


def test_defaults_follow_gotrue_and_urls_move_them() -> None:
    s = Settings(auth_external_github_enabled=True, auth_external_github_client_id="a",
                 auth_external_github_secret="b", auth_external_gitlab_enabled=True,
                 auth_external_gitlab_url="https://git.corp.example/", auth_external_gitlab_scopes="api")
    gh = providers.get(s, "github")
    assert gh is not None and (gh.authorize_url, gh.api) == ("https://github.com/login/oauth/authorize",
                                                             "https://api.github.com")
    enterprise = providers.get(s.model_copy(update={"auth_external_github_url": "https://ghe.example"}), "github")
    assert enterprise is not None and enterprise.api == "https://ghe.example/api/v3"
    gl = providers.get(s, "gitlab")
    assert gl is not None and gl.token_url == "https://git.corp.example/oauth/token" and gl.scopes == ("read_user", "api")
    assert providers.get(s, "google") is None
    assert providers.enabled_names(s) == ["github", "gitlab"]


def test_authorize_reasons() -> None:
    s = Settings(auth_external_gitlab_enabled=True, auth_external_gitlab_client_id="x")
    cases = {"twitch": "provider is not enabled", "nope": "Provider nope could not be found",
             "custom:x": "custom OAuth providers are disabled", "gitlab": "missing OAuth secret"}
    for name, reason in cases.items():
        with pytest.raises(AuthError) as exc:
            providers.for_redirect(s, name, KNOWN)
        assert exc.value.message == "Unsupported provider: " + reason
    with pytest.raises(AuthError) as exc:
        providers.for_redirect(Settings(auth_external_gitlab_enabled=True), "gitlab", KNOWN)
    assert exc.value.message == "Unsupported provider: missing OAuth client ID"


def test_issuers() -> None:
    s = Settings(auth_external_apple_enabled=True, auth_external_azure_enabled=True,
                 auth_external_oidc_provider="corp", auth_external_oidc_issuer="https://id.corp.example/.well-known/openid-configuration")
    apple, azure, corp = (providers.get(s, n) for n in ("apple", "azure", "custom:corp"))
    assert apple and azure and corp
    assert oidc.issuer_ok(apple, "https://account.apple.com") and not oidc.issuer_ok(apple, "https://evil.example")
    assert oidc.issuer_ok(azure, "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0")
    assert not oidc.issuer_ok(azure, "https://login.evil.example/x/v2.0")
    assert corp.base == "https://id.corp.example" and oidc.issuer_ok(corp, "https://id.corp.example/")
    assert not oidc.issuer_ok(corp, None)


def test_identity_data_has_gotrue_keys() -> None:
    data = profiles.identity_data({"iss": "https://i", "name": "Ann", "picture": "p", "preferred_username": "ann",
                                   "email": "X", "junk": 1, "email_verified": "true"},
                                  sub="42", email="Ann@Example.COM", verified=True)
    assert data == {"iss": "https://i", "sub": "42", "name": "Ann", "preferred_username": "ann", "picture": "p",
                    "email": "ann@example.com", "email_verified": True, "phone_verified": False,
                    "full_name": "Ann", "avatar_url": "p", "provider_id": "42", "user_name": "ann"}

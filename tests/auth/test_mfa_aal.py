"""What needs an aal2 session once a factor is verified (enrol another, unenroll, change email or
password), how unenrolling and admin deletion step sessions down, and the admin factor routes."""

from __future__ import annotations

from typing import Callable

import httpx
import pytest

from tests.auth.conftest import py_client, unique_email
from tests.auth.mfa_helpers import NEW, api_error, claims, send, signed_in, step_up, token_of
from tests.conftest import ServerHandle, sql


def test_aal1_session_cannot_unenroll_a_verified_factor(server: ServerHandle) -> None:
    up = step_up(server, "aal-unenroll")
    weak = signed_in(server, up.email)
    assert api_error(lambda: weak.auth.mfa.unenroll({"factor_id": up.factor_id})) == ("insufficient_aal", 422)


def test_aal1_session_cannot_enroll_another_factor(server: ServerHandle) -> None:
    up = step_up(server, "aal-enroll")
    weak = signed_in(server, up.email)
    assert api_error(lambda: weak.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "second"})) == \
        ("insufficient_aal", 403)
    assert up.sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "second"}).friendly_name == "second"


@pytest.mark.parametrize("change", [{"password": "another-secret"}, {"email": "moved"}], ids=["password", "email"])
def test_email_or_password_change_needs_aal2(server: ServerHandle, change: dict[str, str]) -> None:
    if "email" in change:
        change = {"email": unique_email("moved")}
    up = step_up(server, "aal-put")
    weak = token_of(signed_in(server, up.email))
    r = send(server, "PUT", "/user", weak, change)
    assert (r.status_code, r.json()) == (401, {
        "code": "insufficient_aal",
        "message": "AAL2 session is required to update email or password when MFA is enabled."})
    assert send(server, "PUT", "/user", weak, {"data": {"theme": "dark"}}).status_code == 200  # metadata is fine
    assert send(server, "PUT", "/user", token_of(up.sb), change).status_code == 200


def test_unverified_factor_goes_without_aal2(server: ServerHandle) -> None:
    up = step_up(server, "aal-pending")
    pending = up.sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "spare"})
    weak = signed_in(server, up.email)
    assert weak.auth.mfa.unenroll({"factor_id": pending.id}).id == pending.id


def test_same_friendly_name_conflicts(server: ServerHandle) -> None:
    up = step_up(server, "aal-name", name="phone")
    assert api_error(lambda: up.sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})) == \
        ("mfa_factor_name_conflict", 422)


def test_unenroll_steps_the_session_down(server: ServerHandle) -> None:
    up = step_up(server, "aal-down")
    assert up.sb.auth.mfa.unenroll({"factor_id": up.factor_id}).id == up.factor_id
    token = claims(up.sb.auth.refresh_session().session.access_token)
    assert token["aal"] == "aal1" and [m["method"] for m in token["amr"]] == ["password"]
    row = sql(server, "select aal, factor_id from auth.sessions where id = $1::uuid", token["session_id"])[0]
    assert (row["aal"], row["factor_id"]) == ("aal1", None)
    assert up.sb.auth.mfa.list_factors().all == []


def test_admin_lists_factors(server: ServerHandle) -> None:
    up = step_up(server, "aal-admin-list", name="work phone")
    listed = py_client(server, server.service_key).auth.admin.mfa.list_factors({"user_id": up.user_id})
    assert [(f.id, f.status, f.friendly_name, f.factor_type) for f in listed] == \
        [(up.factor_id, "verified", "work phone", "totp")]


def test_admin_deletes_a_factor_and_its_sessions_step_down(server: ServerHandle) -> None:
    up = step_up(server, "aal-admin-del")
    adm = py_client(server, server.service_key).auth.admin
    assert adm.mfa.delete_factor({"user_id": up.user_id, "id": up.factor_id}).id == up.factor_id
    assert adm.mfa.list_factors({"user_id": up.user_id}) == []
    assert claims(up.sb.auth.refresh_session().session.access_token)["aal"] == "aal1"


def test_admin_factor_routes_need_the_service_role(server: ServerHandle) -> None:
    up = step_up(server, "aal-admin-403")
    r = httpx.get(f"{server.url}/auth/v1/admin/users/{up.user_id}/factors",
                  headers={"apikey": server.anon_key, "Authorization": f"Bearer {token_of(up.sb)}", **NEW})
    assert (r.status_code, r.json()["code"]) == (403, "not_admin")


@pytest.fixture(scope="module")
def low_aal_server(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    return server_factory({"OWNBASE_AUTH_SESSIONS_ALLOW_LOW_AAL": "60"})


def test_low_aal_sessions_of_mfa_users_are_capped(low_aal_server: ServerHandle) -> None:
    """GoTrue's SESSIONS_ALLOW_LOW_AAL: an aal1 session of a user with a verified factor lives only
    that long; aal2 sessions and users without factors are not affected."""
    server = low_aal_server
    up = step_up(server, "aal-low")
    weak = signed_in(server, up.email)
    session = weak.auth.get_session()
    token = claims(session.access_token)
    created = sql(server, "select extract(epoch from created_at)::bigint as t from auth.sessions"
                          " where id = $1::uuid", token["session_id"])[0]["t"]
    assert token["exp"] <= created + 60 and session.expires_in <= 60
    for sb in (weak, up.sb):
        sql(server, "update auth.sessions set created_at = now() - interval '2 minutes' where id = $1::uuid",
            claims(token_of(sb))["session_id"])
    assert api_error(lambda: weak.auth.refresh_session()) == ("session_expired", 400)
    assert claims(up.sb.auth.refresh_session().session.access_token)["aal"] == "aal2"

"""Admin API through supabase-py's auth.admin, plus wire details (headers, UUID checks)."""

from __future__ import annotations

import httpx
import pytest
from supabase_auth.errors import AuthApiError

from tests.auth.conftest import last_mail, link_of, py_client, unique_email
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}


def test_admin_create_get_update_delete(server: ServerHandle) -> None:
    adm = py_client(server, server.service_key).auth.admin
    email = unique_email("admin")
    created = adm.create_user({"email": email, "password": "secret123", "email_confirm": True,
                               "user_metadata": {"name": "Bo"}, "app_metadata": {"tier": "gold"}})
    user = created.user
    assert user.email == email and user.email_confirmed_at is not None
    assert user.app_metadata["tier"] == "gold" and user.app_metadata["provider"] == "email"
    # The new user can sign in right away (confirmed by the admin).
    assert py_client(server).auth.sign_in_with_password({"email": email, "password": "secret123"}).session
    assert adm.get_user_by_id(user.id).user.user_metadata == {"name": "Bo"}
    upd = adm.update_user_by_id(user.id, {"user_metadata": {"age": 3}, "app_metadata": {"tier": "silver"},
                                          "password": "changed123"})
    assert upd.user.user_metadata == {"name": "Bo", "age": 3} and upd.user.app_metadata["tier"] == "silver"
    assert py_client(server).auth.sign_in_with_password({"email": email, "password": "changed123"}).session
    with pytest.raises(AuthApiError) as exc:
        adm.create_user({"email": email, "password": "secret123"})
    assert exc.value.code == "email_exists"
    adm.update_user_by_id(user.id, {"ban_duration": "24h"})
    with pytest.raises(AuthApiError) as exc:
        py_client(server).auth.sign_in_with_password({"email": email, "password": "changed123"})
    assert exc.value.code == "user_banned"
    adm.delete_user(user.id)
    with pytest.raises(AuthApiError) as exc:
        adm.get_user_by_id(user.id)
    assert exc.value.code == "user_not_found" and exc.value.status == 404
    assert sql(server, "select count(*) as n from auth.users where email = $1", email)[0]["n"] == 0


def test_admin_list_paginates_with_headers(server: ServerHandle) -> None:
    adm = py_client(server, server.service_key).auth.admin
    for _ in range(3):
        adm.create_user({"email": unique_email("page"), "password": "secret123"})
    total = sql(server, "select count(*) as n from auth.users")[0]["n"]
    first = adm.list_users(page=1, per_page=2)
    assert len(first) == 2
    second = adm.list_users(page=2, per_page=2)
    assert len(second) >= 1 and {u.id for u in first}.isdisjoint({u.id for u in second})
    r = httpx.get(server.url + "/auth/v1/admin/users?page=1&per_page=2",
                  headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"})
    assert r.status_code == 200
    assert r.headers["x-total-count"] == str(total)
    assert 'rel="next"' in r.headers["link"] and 'rel="last"' in r.headers["link"]
    assert r.json()["aud"] == "authenticated" and r.json()["users"][0]["identities"] is None
    last_page = -(-total // 2)
    tail = httpx.get(server.url + f"/auth/v1/admin/users?page={last_page}&per_page=2",
                     headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"})
    assert 'rel="next"' not in tail.headers["link"]
    marker = unique_email("findme").split("@")[0]
    adm.create_user({"email": f"{marker}@example.com", "password": "secret123"})
    found = httpx.get(server.url + "/auth/v1/admin/users", params={"filter": marker},
                      headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"})
    assert [u["email"] for u in found.json()["users"]] == [f"{marker}@example.com"]
    assert found.headers["x-total-count"] == "1"
    bad = httpx.get(server.url + "/auth/v1/admin/users?page=x",
                    headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}", **NEW})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"


def test_admin_routes_refuse_normal_users_and_bad_ids(server: ServerHandle) -> None:
    adm = py_client(server, server.service_key).auth.admin
    email = unique_email("normal")
    adm.create_user({"email": email, "password": "secret123", "email_confirm": True})
    session = py_client(server).auth.sign_in_with_password({"email": email, "password": "secret123"}).session
    for token in (session.access_token, server.anon_key):
        r = httpx.get(server.url + "/auth/v1/admin/users",
                      headers={"apikey": server.anon_key, "Authorization": f"Bearer {token}", **NEW})
        assert r.status_code == 403 and r.json() == {"code": "not_admin", "message": "User not allowed"}
    # supabase-py with the user's key is refused too
    with pytest.raises(AuthApiError) as exc:
        py_client(server).auth.admin.list_users()
    assert exc.value.code == "not_admin"
    r = httpx.get(server.url + "/auth/v1/admin/users/not-a-uuid",
                  headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}", **NEW})
    assert r.status_code == 404 and r.json()["message"] == "user_id must be an UUID"


def test_generate_link_and_invite(server: ServerHandle) -> None:
    adm = py_client(server, server.service_key).auth.admin
    email = unique_email("gen")
    res = adm.generate_link({"type": "signup", "email": email, "password": "secret123"})
    props = res.properties
    assert props.verification_type == "signup" and len(props.email_otp) == 6
    assert props.action_link.startswith(server.url + "/auth/v1/verify?token=" + props.hashed_token)
    sb = py_client(server)
    verified = sb.auth.verify_otp({"token_hash": props.hashed_token, "type": "signup"})
    assert verified.user is not None and verified.user.email_confirmed_at is not None
    invited = unique_email("invite")
    user = adm.invite_user_by_email(invited, {"data": {"team": "x"}}).user
    assert user.invited_at is not None and user.user_metadata == {"team": "x"}
    link = link_of(last_mail(server, invited, "invite"))
    r = httpx.get(link, follow_redirects=False)
    assert r.status_code == 303 and "access_token=" in r.headers["location"] and "type=invite" in r.headers["location"]
    with pytest.raises(AuthApiError) as exc:
        adm.invite_user_by_email(email)
    assert exc.value.code == "email_exists"


@pytest.mark.parametrize("ltype", ["email_change_current", "email_change_new"])
def test_generate_link_email_change_reports_the_type_asked_for(server: ServerHandle, ltype: str) -> None:
    adm = py_client(server, server.service_key).auth.admin
    email, new_email = unique_email("chg"), unique_email("chgnew")
    adm.create_user({"email": email, "password": "secret123", "email_confirm": True})
    # supabase-py validates verification_type against its GenerateLinkType: "email_change" fails there.
    res = adm.generate_link({"type": ltype, "email": email, "new_email": new_email})  # type: ignore[typeddict-item]
    props = res.properties
    assert props.verification_type == ltype
    assert "type=email_change&" in props.action_link  # the link still verifies as an email change
    addressed = email if ltype == "email_change_current" else new_email
    done = py_client(server).auth.verify_otp({"email": addressed, "token": props.email_otp,
                                              "type": "email_change"})
    assert done.user is not None and done.user.email == new_email


def test_admin_list_far_pages_are_empty_not_errors(server: ServerHandle) -> None:
    headers = {"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}", **NEW}
    # Inside uint64 (GoTrue accepts it) but past any offset PostgreSQL can take: an empty page.
    for query in ("page=18446744073709551615", "page=9223372036854775807&per_page=1000"):
        r = httpx.get(server.url + "/auth/v1/admin/users?" + query, headers=headers)
        assert r.status_code == 200 and r.json()["users"] == [], (query, r.text)
    # Leading zeros are still a small number for strconv.ParseUint.
    py_client(server, server.service_key).auth.admin.create_user({"email": unique_email("far")})
    padded = httpx.get(server.url + "/auth/v1/admin/users?per_page=1&page=" + "0" * 30 + "1", headers=headers)
    plain = httpx.get(server.url + "/auth/v1/admin/users?per_page=1&page=1", headers=headers)
    assert padded.status_code == 200 and padded.json()["users"] == plain.json()["users"] != []

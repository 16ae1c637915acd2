"""`migrate sync`: the initial copy at the slot's snapshot, then inserts, updates and deletes made on
the source arrive on the target; a pause loses nothing; finish sets sequences and cleans up."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any, Callable

import pytest

from tests.conftest import ServerHandle, create_database, sql
from tests.migrate.conftest import SKIPS, Source, migrate, wait_until

LAG_BOUND = 60  # seconds: the bound for continuous sync


@pytest.fixture(scope="module")
def sync_source(supabase_source: Source) -> Source:
    """A clone of the source database, so the writes below do not reach other tests' source."""
    subprocess.run([str(supabase_source.bindir / "psql"), supabase_source.admin_url, "-v", "ON_ERROR_STOP=1",
                    "-c", "create database sb_sync template sb_source"], check=True, capture_output=True)
    return dataclasses.replace(supabase_source, url=supabase_source.url.rsplit("/", 1)[0] + "/sb_sync")


@pytest.fixture(scope="module")
def sync_target(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Any) -> ServerHandle:
    return server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_sync"),
                           "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "sync-blobs")})


def _rows(handle: ServerHandle, query: str) -> list[Any]:
    return [tuple(r) for r in sql(handle, query)]


def test_sync_carries_changes_and_survives_a_pause(sync_source: Source, sync_target: ServerHandle) -> None:
    supabase_source = sync_source
    src = ["--from", supabase_source.url]
    migrate(sync_target, "schema", *src, *SKIPS)
    report = sync_target.data_dir.parent / "sync.json"
    migrate(sync_target, "sync", *src, "--report", str(report))
    started = json.loads(report.read_text())
    assert started["started"] and set(started["tables"]) == {
        "public.invoices", "public.posts", "public.profiles", "public.todos"}
    assert started["not_replicated"] == []
    assert started["auth_tables"] == ["auth.users", "auth.identities", "auth.sessions", "auth.refresh_tokens",
                                      "auth.mfa_amr_claims"]
    assert sql(sync_target, "select count(*) as n from auth.users")[0]["n"] == 200
    assert sql(sync_target, "select count(*) as n from public.todos")[0]["n"] == \
        int(supabase_source.psql("select count(*) from public.todos"))

    user = supabase_source.fixture["users"][0]["id"]
    changed = int(supabase_source.psql("select id from public.todos order by id limit 1"))
    gone = int(supabase_source.psql("select id from public.todos order by id desc limit 1"))
    new_id = int(supabase_source.psql(
        f"insert into public.todos (user_id, title) values ('{user}', 'written after the copy') returning id")
        .splitlines()[0])
    supabase_source.psql(f"update public.todos set title = 'changed after the copy' where id = {changed}")
    supabase_source.psql(f"delete from public.todos where id = {gone}")
    q = "select id, title from public.todos where id in ({}) order by id"
    ids = f"{changed}, {gone}, {new_id}"
    wait_until(lambda: _rows(sync_target, q.format(ids)) == [(changed, "changed after the copy"),
                                                            (new_id, "written after the copy")], LAG_BOUND)

    # Users follow too: a sign-up (with its profile from the source's trigger) and a password change.
    new_user = "11111111-2222-4333-8444-555555555555"
    supabase_source.psql(f"""insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
        confirmation_token, recovery_token, email_change_token_new, email_change, raw_user_meta_data,
        created_at, updated_at) values ('00000000-0000-0000-0000-000000000000', '{new_user}', 'authenticated',
        'authenticated', 'late-signup@example.com', '', '', '', '', '', '{{"username": "late_signup"}}',
        now(), now())""")
    supabase_source.psql(f"update auth.users set encrypted_password = 'changed-hash' where id = '{user}'")
    wait_until(lambda: _rows(sync_target, f"select username from public.profiles where id = '{new_user}'")
               == [("late_signup",)] and _rows(sync_target, f"select encrypted_password from auth.users"
                                                             f" where id = '{user}'") == [("changed-hash",)],
               LAG_BOUND)
    assert sql(sync_target, "select count(*) as n from public.profiles where id = $1::uuid", new_user)[0]["n"] == 1

    migrate(sync_target, "sync", *src, "--pause")
    supabase_source.psql(f"update public.todos set title = 'written while paused' where id = {changed}")
    migrate(sync_target, "sync", *src)  # start again: the slot kept the change
    wait_until(lambda: _rows(sync_target, f"select title from public.todos where id = {changed}")
               == [("written while paused",)], LAG_BOUND)

    status = sync_target.data_dir.parent / "status.json"
    migrate(sync_target, "sync", *src, "--status", "--report", str(status))
    assert json.loads(status.read_text())["subscription"] == "enabled"

    migrate(sync_target, "sync", *src, "--finish")
    assert sql(sync_target, "select count(*) as n from pg_subscription")[0]["n"] == 0
    assert supabase_source.psql("select count(*) from pg_replication_slots") == "0"
    top = int(supabase_source.psql("select last_value from public.todos_id_seq"))
    assert sql(sync_target, "select last_value from public.todos_id_seq")[0]["last_value"] == top
    verify = sync_target.data_dir.parent / "verify.json"
    migrate(sync_target, "verify", *src, "--report", str(verify), check=False)
    tables = {c["check"]: c["ok"] for c in json.loads(verify.read_text())["checks"] if c["check"].startswith("table ")}
    assert tables == {"table public.invoices": True, "table public.posts": True, "table public.profiles": True,
                      "table public.todos": True}

"""The move from a source whose `postgres` is what Supabase makes it: NOSUPERUSER CREATEDB CREATEROLE
REPLICATION BYPASSRLS, a member of the auth/storage owners, the API roles, pg_monitor,
pg_read_all_data and pg_signal_backend (see the `nonsuper_source` fixture). The main chain
(test_chain.py) runs against a source whose `postgres` is the cluster's superuser."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable

import asyncpg
import pytest
from supabase import ClientOptions, create_client

from tests.conftest import ServerHandle, create_database, run, sql
from tests.migrate.conftest import SKIPS, SOURCE_JWT_SECRET, TEN_YEARS, Source, migrate, reporting_step, wait_until

TABLES = {"public.invoices": 155, "public.posts": 95, "public.profiles": 200, "public.todos": 448}


@pytest.fixture(scope="module")
def ns_target(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory,
              ) -> ServerHandle:
    """An ownbase of its own for this source (the session's `target` belongs to test_chain.py)."""
    blobs = tmp_path_factory.mktemp("ns-target-blobs")
    return server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_target_ns"),
                           "OWNBASE_STORAGE_LOCAL_DIR": str(blobs),
                           "OWNBASE_JWT_SECRET": SOURCE_JWT_SECRET,
                           "OWNBASE_AUTH_REFRESH_TOKEN_TTL": TEN_YEARS})


@pytest.fixture(scope="module")
def migrated(nonsuper_source: Source, source_storage: ServerHandle, ns_target: ServerHandle,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """plan -> schema -> data -> users -> files -> verify from the non-superuser source, with reports.

    Files have nothing to do with database privileges, but verify compares objects too: the bytes
    come from the session's Storage stand-in (the fixture is deterministic: the same objects)."""
    reports = tmp_path_factory.mktemp("ns-reports")
    src = ["--from", nonsuper_source.url]
    out: dict[str, Any] = {}

    step = reporting_step(ns_target, reports, out)

    step("plan", "plan", *src)
    step("schema", "schema", *src, *SKIPS)
    step("data", "data", *src)
    step("users", "users", *src, "--sessions", "--jwt-secret", SOURCE_JWT_SECRET)
    step("files", "files", *src, "--from-url", source_storage.url, "--from-service-key", source_storage.service_key)
    step("verify", "verify", *src, check=False)
    return out


def test_source_role_is_supabases_postgres(nonsuper_source: Source) -> None:
    assert nonsuper_source.psql("select current_user") == "postgres"
    assert nonsuper_source.psql("select rolsuper from pg_roles where rolname = 'postgres'") == "f"
    assert nonsuper_source.psql("select rolsuper from pg_roles where rolname = 'supabase_admin'") == "t"


def test_plan_sees_everything(migrated: dict[str, Any]) -> None:
    plan = migrated["plan"]
    assert {t["table"]: t["rows_estimate"] for t in plan["tables"]} == TABLES
    assert plan["auth"] == {"users": 200, "identities": 206, "sessions": 100, "refresh_tokens": 200}
    assert plan["password_hashes"] == {"bcrypt": 184, "none": 16}
    assert plan["storage"]["objects"] == 419
    assert plan["realtime_publication"] == ["public.todos"]
    assert len(plan["applied_migrations"]) == 5
    actions = {e["name"]: e["action"] for e in plan["extensions"]}
    assert actions["pg_cron"] == "refuse" and actions["supabase_vault"] == "refuse"
    cron = next(e for e in plan["extensions"] if e["name"] == "pg_cron")
    assert "cron job purge-completed-todos" in cron["dependents"]


def test_schema_arrives(migrated: dict[str, Any], ns_target: ServerHandle) -> None:
    summary = migrated["schema"]["summary"]
    assert summary["storage_policies"] == 7 and summary["auth_triggers"] == 1
    assert summary["realtime_tables"] == 1 and summary["migration_history"] == 5
    grants = {(r["grantee"], r["privilege_type"]) for r in sql(
        ns_target, "select grantee, privilege_type from information_schema.role_table_grants"
                   " where table_schema = 'public' and table_name = 'invoices'")}
    assert ("authenticated", "SELECT") in grants and ("service_role", "INSERT") in grants


def test_rows_and_users_arrive(migrated: dict[str, Any], nonsuper_source: Source, ns_target: ServerHandle) -> None:
    assert {t["table"]: t["rows"] for t in migrated["data"]["tables"]} == TABLES
    assert sql(ns_target, "select count(*) as n from public.profiles")[0]["n"] == 200
    tables = migrated["users"]["tables"]
    assert {k: v["copied"] for k, v in tables.items()} == {
        "auth.users": 200, "auth.identities": 206, "auth.sessions": 100, "auth.refresh_tokens": 200,
        "auth.mfa_amr_claims": 100}
    src_next = int(nonsuper_source.psql("select last_value from public.invoice_number_seq"))
    assert sql(ns_target, "select last_value from public.invoice_number_seq")[0]["last_value"] == src_next


def test_migrated_user_signs_in_with_old_password(migrated: dict[str, Any], nonsuper_source: Source,
                                                  ns_target: ServerHandle) -> None:
    user = next(u for u in nonsuper_source.fixture["users"] if u["kind"] == "email")
    client = create_client(ns_target.url, ns_target.anon_key,
                           options=ClientOptions(auto_refresh_token=False, persist_session=False))
    res = client.auth.sign_in_with_password({"email": user["email"], "password": user["password"]})
    assert res.user is not None and res.user.id == user["id"]


def test_verify_passes(migrated: dict[str, Any]) -> None:
    report = migrated["verify"]
    assert migrated["verify_proc"].returncode == 0, migrated["verify_proc"].stdout
    assert report["ok"] and report["mismatches"] == []
    checks = {c["check"]: c for c in report["checks"]}
    assert {"table public.todos", "auth.users", "password hashes", "policies", "grants"} <= set(checks)
    assert checks["grants"]["source"] > 0 and checks["policies"]["source"] > 0  # not vacuous


def test_the_way_back_writes_as_the_non_superuser(migrated: dict[str, Any], nonsuper_source: Source,
                                                  ns_target: ServerHandle) -> None:
    """Rolling back writes INTO the project as `postgres`, which may not set session_replication_role."""
    back = nonsuper_source.url.rsplit("/", 1)[0] + "/sb_back"
    run(_create_clone(nonsuper_source.admin_url))
    client = create_client(ns_target.url, ns_target.anon_key,
                           options=ClientOptions(auto_refresh_token=False, persist_session=False))
    email = f"ns-after-cutover-{int(time.time())}@example.com"
    signed = client.auth.sign_up({"email": email, "password": "Written-on-ownbase-1"})
    assert signed.user is not None
    new_user = signed.user.id
    sql(ns_target, "insert into public.todos (user_id, title) values ($1::uuid, 'written on ownbase')", new_user)

    # Tables someone created as supabase_admin (older projects, the dashboard of the time) are not
    # postgres's: it has the privileges the image's default privileges give it, not ownership.
    dest = Source(**{**nonsuper_source.__dict__, "url": back})
    _give_to_supabase_admin(dest, "public.invoices")

    reports = ns_target.data_dir.parent
    migrate(ns_target, "users", "--to", back, "--sessions", "--replace", "--report", str(reports / "ns-back-users.json"))
    # postgres may not set session_replication_role: the user triggers are disabled for the copy instead
    assert json.loads((reports / "ns-back-users.json").read_text())["triggers"] == "disable trigger user"
    migrate(ns_target, "data", "--to", back, "--replace", "--report", str(reports / "ns-back-data.json"))
    assert dest.psql("select current_user") == "postgres"
    assert dest.psql(f"select count(*) from auth.users where id = '{new_user}'") == "1"
    assert dest.psql(f"select count(*) from public.profiles where id = '{new_user}'") == "1"  # copied, not re-fired
    assert dest.psql("select title from public.todos where title = 'written on ownbase'") == "written on ownbase"
    # The source's user triggers are back on after the copy.
    assert dest.psql("select tgenabled from pg_trigger where tgname = 'on_auth_user_created'") == "O"
    proc = migrate(ns_target, "verify", "--from", back, check=False)
    assert proc.returncode == 0, proc.stdout

    # A table with a trigger that postgres does not own: it can neither skip nor disable the trigger,
    # and says so instead of writing rows that fire it.
    _give_to_supabase_admin(dest, "public.posts")
    posts = dest.psql("select count(*) from public.posts")
    proc = migrate(ns_target, "data", "--to", back, "--replace", "--table", "public.posts", check=False)
    assert proc.returncode == 2  # a decision is needed, as for an extension the target lacks
    message = " ".join(proc.stderr.split())
    assert "public.posts has triggers (posts_set_updated_at)" in message and "owner, supabase_admin" in message
    assert "session_replication_role" in message and "OWNER TO postgres" in message
    assert dest.psql("select count(*) from public.posts") == posts


def _give_to_supabase_admin(source: Source, table: str) -> None:
    admin = source.admin_url.rsplit("/", 1)[0] + "/" + source.url.rsplit("/", 1)[1]
    dataclasses.replace(source, url=admin).psql(
        f"alter table {table} owner to supabase_admin; grant all on {table} to postgres")
    assert source.psql(f"select pg_has_role(relowner, 'usage') from pg_class where oid = '{table}'::regclass") == "f"


async def _create_clone(admin_url: str, name: str = "sb_back") -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"create database {name} owner postgres template sb_source")
    finally:
        await conn.close()


def test_sync_follows_as_the_non_superuser(nonsuper_source: Source, server_factory: Callable[..., ServerHandle],
                                           pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Logical replication needs only what Supabase's postgres has: REPLICATION, and ownership of the
    auth tables through its membership in supabase_auth_admin (to publish them)."""
    run(_create_clone(nonsuper_source.admin_url, "sb_sync"))
    source = dataclasses.replace(nonsuper_source, url=nonsuper_source.url.rsplit("/", 1)[0] + "/sb_sync")
    tgt = server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_sync_ns"),
                          "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_path_factory.mktemp("ns-sync-blobs"))})
    _give_to_supabase_admin(source, "public.invoices")  # postgres may not publish it
    src = ["--from", source.url]
    migrate(tgt, "schema", *src, *SKIPS)
    report = tgt.data_dir.parent / "ns-sync.json"
    migrate(tgt, "sync", *src, "--report", str(report))
    started = json.loads(report.read_text())
    assert started["started"] and started["not_replicated"] == ["public.invoices"]
    assert any("public.invoices" in n and "supabase_admin" in n for n in started["notes"]), started["notes"]
    assert sql(tgt, "select count(*) as n from public.invoices")[0]["n"] == 155  # copied once all the same
    assert started["auth_tables"] == ["auth.users", "auth.identities", "auth.sessions", "auth.refresh_tokens",
                                      "auth.mfa_amr_claims"]
    assert sql(tgt, "select count(*) as n from auth.users")[0]["n"] == 200
    user = source.fixture["users"][0]["id"]
    new_id = int(source.psql(f"insert into public.todos (user_id, title) values ('{user}', 'after the copy')"
                             " returning id").splitlines()[0])
    source.psql(f"update auth.users set encrypted_password = 'changed-hash' where id = '{user}'")
    wait_until(lambda: sql(tgt, "select count(*) as n from public.todos where id = $1", new_id)[0]["n"] == 1
               and sql(tgt, "select encrypted_password from auth.users where id = $1::uuid", user)[0][0]
               == "changed-hash", 60)
    migrate(tgt, "sync", *src, "--finish")
    assert source.psql("select count(*) from pg_replication_slots") == "0"
    assert source.psql("select count(*) from pg_publication where pubname = 'ownbase_migrate'") == "0"

"""The whole move from the Supabase-shaped fixture onto ownbase, then what users and apps notice:
old passwords, old refresh tokens, old access tokens, RLS answers, file bytes, and verify."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Callable

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from supabase import ClientOptions, create_client

from tests.conftest import ServerHandle, run, sql
from tests.migrate.conftest import SKIPS, SOURCE_JWT_SECRET, Source, migrate, reporting_step

PROJECT_URL = "https://abcdefghijklmnop.supabase.co"


@pytest.fixture(scope="module")
def migrated(supabase_source: Source, source_storage: ServerHandle, target: ServerHandle,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """plan -> schema -> data -> users -> files -> rewrite-urls -> verify, each with its report."""
    reports = tmp_path_factory.mktemp("reports")
    src = ["--from", supabase_source.url]
    out: dict[str, Any] = {}

    step = reporting_step(target, reports, out)

    step("plan", "plan", *src)
    out["schema_refused"] = migrate(target, "schema", *src, "--report", str(reports / "refused.json"), check=False)
    out["refused_report"] = json.loads((reports / "refused.json").read_text())
    step("schema", "schema", *src, *SKIPS)
    step("data", "data", *src)
    step("users", "users", *src, "--sessions", "--jwt-secret", SOURCE_JWT_SECRET)
    step("files", "files", *src, "--from-url", source_storage.url, "--from-service-key", source_storage.service_key)
    step("rewrite_dry", "rewrite-urls", "--from-url", PROJECT_URL, "--to-url", target.url, "--dry-run")
    out["profiles_before_rewrite"] = sql(target, "select count(*) as n from public.profiles where avatar_url like $1",
                                         PROJECT_URL + "%")[0]["n"]
    step("rewrite", "rewrite-urls", "--from-url", PROJECT_URL, "--to-url", target.url)
    step("verify", "verify", *src, check=False)
    return out


def test_plan_reports_what_will_move(migrated: dict[str, Any]) -> None:
    plan = migrated["plan"]
    rows = {t["table"]: t["rows_estimate"] for t in plan["tables"]}
    assert rows == {"public.invoices": 155, "public.posts": 95, "public.profiles": 200, "public.todos": 448}
    assert plan["auth"] == {"users": 200, "identities": 206, "sessions": 100, "refresh_tokens": 200}
    assert plan["password_hashes"] == {"bcrypt": 184, "none": 16}
    assert plan["storage"]["objects"] == 419
    assert plan["realtime_publication"] == ["public.todos"]
    assert len(plan["applied_migrations"]) == 5
    actions = {e["name"]: e["action"] for e in plan["extensions"]}
    assert actions["pg_cron"] == "refuse" and actions["supabase_vault"] == "refuse"
    assert actions["uuid-ossp"] in ("stand-in", "create") and actions["pgcrypto"] in ("stand-in", "create")
    assert any("on_auth_user_created" in t for t in plan["supabase_only"]["auth_users_triggers"])
    cron = next(e for e in plan["extensions"] if e["name"] == "pg_cron")
    assert "cron job purge-completed-todos" in cron["dependents"]


def test_schema_refuses_unavailable_extensions_until_skipped(migrated: dict[str, Any]) -> None:
    refused = migrated["schema_refused"]
    assert refused.returncode == 2
    assert "pg_cron" in refused.stderr and "supabase_vault" in refused.stderr
    assert migrated["refused_report"]["ok"] is False and "pg_cron" in migrated["refused_report"]["error"]
    summary = migrated["schema"]["summary"]
    assert summary["storage_policies"] == 7 and summary["auth_triggers"] == 1
    assert summary["realtime_tables"] == 1 and summary["migration_history"] == 5


def test_schema_objects_arrive_with_grants_and_history(migrated: dict[str, Any], target: ServerHandle) -> None:
    grants = {(r["grantee"], r["privilege_type"]) for r in sql(
        target, "select grantee, privilege_type from information_schema.role_table_grants"
                " where table_schema = 'public' and table_name = 'invoices'")}
    assert ("authenticated", "SELECT") in grants and ("authenticated", "INSERT") not in grants
    assert ("service_role", "INSERT") in grants
    versions = [r["version"] for r in
                sql(target, "select version from supabase_migrations.schema_migrations order by 1")]
    assert versions == ["20240110093000", "20240112101500", "20240120143000", "20240201120000", "20240215080000"]
    assert sql(target, "select count(*) as n from pg_publication_tables where pubname = 'supabase_realtime'"
                       " and tablename = 'todos'")[0]["n"] == 1
    # posts.id defaults to uuid_generate_v4(): the stand-in works on a target without uuid-ossp
    assert sql(target, "select extensions.uuid_generate_v4() is not null as ok")[0]["ok"]


def test_data_users_and_sequences(migrated: dict[str, Any], supabase_source: Source, target: ServerHandle) -> None:
    assert {t["table"]: t["rows"] for t in migrated["data"]["tables"]} == {
        "public.invoices": 155, "public.posts": 95, "public.profiles": 200, "public.todos": 448}
    # The app trigger on auth.users did not fire again: still one profile per user.
    assert sql(target, "select count(*) as n from public.profiles")[0]["n"] == 200
    assert migrated["users"]["tables"]["auth.users"]["copied"] == 200
    src_next = int(supabase_source.psql("select last_value from public.invoice_number_seq"))
    assert sql(target, "select last_value from public.invoice_number_seq")[0]["last_value"] == src_next
    nulls = sql(target, "select count(*) as n from auth.users where confirmation_token is null"
                        " or recovery_token is null or instance_id is null")
    assert nulls[0]["n"] == 0


def _client(target: ServerHandle) -> Any:
    return create_client(target.url, target.anon_key,
                         options=ClientOptions(auto_refresh_token=False, persist_session=False))


def test_migrated_user_signs_in_with_old_password(migrated: dict[str, Any], supabase_source: Source,
                                                  target: ServerHandle) -> None:
    user = next(u for u in supabase_source.fixture["users"] if u["kind"] == "email")
    client = _client(target)
    res = client.auth.sign_in_with_password({"email": user["email"], "password": user["password"]})
    assert res.user is not None and res.user.id == user["id"]
    with pytest.raises(Exception):
        _client(target).auth.sign_in_with_password({"email": user["email"], "password": user["password"] + "x"})


def test_source_refresh_token_refreshes(migrated: dict[str, Any], supabase_source: Source,
                                        target: ServerHandle) -> None:
    session = supabase_source.fixture["sessions"][1]
    res = _client(target).auth.refresh_session(session["refresh_token"])
    assert res.session is not None and res.user is not None and res.user.id == session["user_id"]
    claims = jwt.decode(res.session.access_token, options={"verify_signature": False})
    assert claims["session_id"] == session["session_id"]
    assert res.session.refresh_token != session["refresh_token"]


def _source_token(user_id: str, extra: dict[str, Any] | None = None) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600,
              "app_metadata": {}, "aal": "aal1", **(extra or {})}
    return jwt.encode(claims, SOURCE_JWT_SECRET, algorithm="HS256")


async def _source_rls(url: str, claims: dict[str, Any] | None) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("set local role " + ("authenticated" if claims else "anon"))
            await conn.execute("select set_config('request.jwt.claims', $1, true)", json.dumps(claims or {}))
            return {"todos": sorted(r["id"] for r in await conn.fetch("select id from public.todos")),
                    "posts": sorted(str(r["id"]) for r in await conn.fetch("select id from public.posts")),
                    "invoices": sorted(r["id"] for r in await conn.fetch("select id from public.invoices"))}
    finally:
        await conn.close()


def test_source_secret_token_accepted_and_rls_answers_the_same(migrated: dict[str, Any], supabase_source: Source,
                                                              target: ServerHandle) -> None:
    users = [u for u in supabase_source.fixture["users"] if u["kind"] in ("email", "admin")][:4]
    for user in [*users, None]:
        claims = None
        if user is not None:
            claims = {"sub": user["id"], "role": "authenticated", "aud": "authenticated", "aal": "aal1",
                      "app_metadata": {"role": "admin"} if user["is_admin"] else {}}
        expected = run(_source_rls(supabase_source.url, claims))
        token = _source_token(user["id"], {"app_metadata": claims["app_metadata"]}) if user else None
        with target.client(token=token) as c:
            got = {"todos": sorted(r["id"] for r in c.get("/rest/v1/todos?select=id").json()),
                   "posts": sorted(r["id"] for r in c.get("/rest/v1/posts?select=id").json()),
                   "invoices": sorted(r["id"] for r in c.get("/rest/v1/invoices?select=id").json())}
        assert got == expected, user
    assert any(run(_source_rls(supabase_source.url, {"sub": u["id"], "role": "authenticated"}))["todos"]
               for u in users)  # the comparison is not vacuous


def test_files_are_byte_identical(migrated: dict[str, Any], supabase_source: Source, target: ServerHandle) -> None:
    assert [b["mismatches"] for b in migrated["files"]["buckets"]] == [[], []]
    with target.client(target.service_key) as c:
        for obj in supabase_source.fixture["objects"]:
            r = c.get(f"/storage/v1/object/authenticated/{obj['bucket']}/{obj['name']}")
            assert r.status_code == 200, obj["name"]
            assert hashlib.sha256(r.content).hexdigest() == obj["sha256"], obj["name"]
        bucket = c.get("/storage/v1/bucket/documents").json()
    assert bucket["public"] is False and bucket["file_size_limit"] == 10485760
    assert set(bucket["allowed_mime_types"]) == {"application/pdf", "image/png", "image/jpeg", "text/plain"}


def test_rewrite_urls_counts_then_rewrites(migrated: dict[str, Any], target: ServerHandle) -> None:
    dry = {c["column"]: c["rows"] for c in migrated["rewrite_dry"]["columns"]}
    assert dry == {"public.posts.content": 95, "public.profiles.avatar_url": 142}
    assert migrated["profiles_before_rewrite"] == 142  # the dry run changed nothing
    assert sql(target, "select count(*) as n from public.profiles where avatar_url like $1",
               PROJECT_URL + "%")[0]["n"] == 0
    url = sql(target, "select avatar_url from public.profiles where avatar_url like $1 limit 1",
              target.url + "/storage/v1/object/public/avatars/%")[0]["avatar_url"]
    with target.client() as c:
        assert c.get(url[len(target.url):]).status_code == 200


def test_verify_passes(migrated: dict[str, Any]) -> None:
    report = migrated["verify"]
    assert migrated["verify_proc"].returncode == 0, migrated["verify_proc"].stdout
    assert report["ok"] and report["mismatches"] == []
    checks = {c["check"] for c in report["checks"]}
    assert {"table public.todos", "auth.users", "password hashes", "object bytes (md5)", "policies", "grants"} <= checks


def test_rerunning_steps_changes_nothing(migrated: dict[str, Any], supabase_source: Source,
                                         target: ServerHandle) -> None:
    src = ["--from", supabase_source.url]
    migrate(target, "schema", *src, *SKIPS)
    migrate(target, "data", *src)
    migrate(target, "users", *src, "--sessions")
    assert sql(target, "select count(*) as n from public.todos")[0]["n"] == 448
    assert sql(target, "select count(*) as n from auth.users")[0]["n"] == 200
    assert sql(target, "select count(*) as n from storage.objects")[0]["n"] == 419


def test_verify_names_a_changed_row_hash_and_object(migrated: dict[str, Any], supabase_source: Source,
                                                    target: ServerHandle) -> None:
    todo = sql(target, "select id, title from public.todos order by id limit 1")[0]
    user = next(u for u in supabase_source.fixture["users"] if u["kind"] == "email" and u["id"] != "")
    old_hash = sql(target, "select encrypted_password from auth.users where id = $1::uuid", user["id"])[0][0]
    obj = sql(target, "select bucket_id, name, version from storage.objects where bucket_id = 'documents'"
                      " order by name limit 1")[0]
    blob = Path(target.storage_root) / obj["bucket_id"] / obj["name"] / obj["version"]
    original = blob.read_bytes()
    sql(target, "update public.todos set title = title || ' (edited)' where id = $1", todo["id"])
    sql(target, "update auth.users set encrypted_password = $2 where id = $1::uuid", user["id"],
        "$2a$10$" + "x" * 53)
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        proc = migrate(target, "verify", "--from", supabase_source.url, check=False)
        assert proc.returncode == 1
        text = " ".join(proc.stdout.split())
        assert f"table public.todos: {todo['id']} (differs)" in text
        assert f"user {user['id']}" in text
        assert f"{obj['bucket_id']}/{obj['name']} (bytes differ)" in text
    finally:
        sql(target, "update public.todos set title = $2 where id = $1", todo["id"], todo["title"])
        sql(target, "update auth.users set encrypted_password = $2 where id = $1::uuid", user["id"], old_hash)
        blob.write_bytes(original)
    assert migrate(target, "verify", "--from", supabase_source.url, check=False).returncode == 0


def test_the_way_back_restores_the_supabase_database(migrated: dict[str, Any], supabase_source: Source,
                                                     target: ServerHandle) -> None:
    """After cut-over people keep writing on ownbase; rolling back carries it into the old project."""
    admin = supabase_source.admin_url
    back = supabase_source.url.rsplit("/", 1)[0] + "/sb_back"
    run(_create_clone(admin))
    client = _client(target)
    email = f"after-cutover-{int(time.time())}@example.com"
    signed = client.auth.sign_up({"email": email, "password": "Written-on-ownbase-1"})
    assert signed.user is not None
    new_user = signed.user.id
    sql(target, "insert into public.todos (user_id, title) values ($1::uuid, 'written on ownbase')", new_user)
    sql(target, "update public.profiles set full_name = 'renamed on ownbase' where id = $1::uuid",
        supabase_source.fixture["users"][0]["id"])

    migrate(target, "users", "--to", back, "--sessions", "--replace")
    migrate(target, "data", "--to", back, "--replace")
    dest = Source(**{**supabase_source.__dict__, "url": back})
    assert dest.psql(f"select count(*) from auth.users where id = '{new_user}'") == "1"
    assert dest.psql(f"select count(*) from public.profiles where id = '{new_user}'") == "1"  # copied, not re-fired
    assert dest.psql("select title from public.todos where title = 'written on ownbase'") == "written on ownbase"
    report = target.data_dir.parent / "verify-back.json"
    proc = migrate(target, "verify", "--from", back, "--report", str(report), check=False)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(report.read_text())["ok"]


async def _create_clone(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("create database sb_back template sb_source")
    finally:
        await conn.close()


def test_trusted_jwks_keeps_asymmetric_source_tokens_valid(migrated: dict[str, Any], supabase_source: Source,
                                                           target: ServerHandle,
                                                           server_factory: Callable[..., ServerHandle]) -> None:
    """Supabase's asymmetric keys cannot be exported: their public half is trusted until tokens expire."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": "sb-key-1", "alg": "ES256", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    report = target.data_dir.parent / "trust.json"
    try:
        migrate(target, "users", "--from", supabase_source.url, "--report", str(report),
                "--trust-jwks", f"http://127.0.0.1:{httpd.server_port}/auth/v1/.well-known/jwks.json")
    finally:
        httpd.shutdown()
    trusted = json.loads(report.read_text())["trusted_jwks"]
    assert trusted["keys"] == ["sb-key-1"]
    handle = server_factory({"OWNBASE_DATABASE_URL": target.env["OWNBASE_DATABASE_URL"],
                             "OWNBASE_STORAGE_LOCAL_DIR": target.env["OWNBASE_STORAGE_LOCAL_DIR"],
                             "OWNBASE_JWT_TRUSTED_JWKS": trusted["file"]})
    user = next(u for u in supabase_source.fixture["users"] if u["kind"] == "email")
    now = int(time.time())
    claims = {"sub": user["id"], "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 600}
    good = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "sb-key-1"})
    other = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "sb-key-1"})
    confused = jwt.encode(claims, "sb-key-1-as-a-secret-that-is-long-enough", algorithm="HS256",
                          headers={"kid": "sb-key-1"})
    with handle.client(token=good) as c:
        r = c.get("/auth/v1/user")
        assert r.status_code == 200 and r.json()["id"] == user["id"]
    for bad in (other, confused):
        with handle.client(token=bad) as c:
            assert c.get("/auth/v1/user").status_code in (401, 403)


def test_the_way_back_for_files(migrated: dict[str, Any], supabase_source: Source, source_storage: ServerHandle,
                                target: ServerHandle) -> None:
    """Uploads and deletions made on ownbase after cut-over reach the project's Storage API."""
    back = supabase_source.url.rsplit("/", 1)[0] + "/sb_back"  # created by the database way-back test
    new_bytes = b"written on ownbase after cut-over " * 100
    gone = next(o for o in supabase_source.fixture["objects"] if o["bucket"] == "documents")
    with target.client(target.service_key) as c:
        assert c.post("/storage/v1/object/avatars/after-cutover/new.txt", content=new_bytes,
                      headers={"content-type": "text/plain"}).status_code == 200
        assert c.request("DELETE", "/storage/v1/object/documents",
                         json={"prefixes": [gone["name"]]}).status_code == 200
    report = target.data_dir.parent / "files-back.json"
    try:
        migrate(target, "files", "--to", back, "--to-url", source_storage.url, "--to-service-key",
                source_storage.service_key, "--replace", "--report", str(report))
        result = {b["bucket"]: b for b in json.loads(report.read_text())["buckets"]}
        assert result["avatars"]["uploaded"] == 1 and result["documents"]["deleted"] == 1
        assert result["documents"]["uploaded"] == 0 and not result["avatars"]["failed"]
        with source_storage.client(source_storage.service_key) as c:
            assert c.get("/storage/v1/object/authenticated/avatars/after-cutover/new.txt").content == new_bytes
            assert c.get(f"/storage/v1/object/authenticated/documents/{gone['name']}").status_code in (400, 404)
    finally:  # the Storage stand-in is shared by the session's other tests: put it back
        with source_storage.client(source_storage.service_key) as c:
            c.post(f"/storage/v1/object/documents/{gone['name']}", headers={"content-type": gone["mimetype"],
                   "x-upsert": "true"}, content=(supabase_source.files_dir / "documents" / gone["name"]).read_bytes())
            c.request("DELETE", "/storage/v1/object/avatars", json={"prefixes": ["after-cutover/new.txt"]})

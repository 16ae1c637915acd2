"""Two ownbase instances: one plays the live Supabase project (own database, own signing key),
the others run in bridge mode in front of it (own databases too). Driven by supabase-py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from ownbase.keys import generate_private_key_pem
from tests.conftest import ServerHandle, create_database, sql, start_server

UPSTREAM_SQL = """
create table if not exists public.orders (id uuid primary key default gen_random_uuid(), item text not null);
create table if not exists public.profiles (id uuid primary key, name text not null);
create table if not exists public.legacy (id int primary key, note text);
grant all on public.orders, public.profiles, public.legacy to anon, authenticated, service_role;
insert into public.orders (item) values ('upstream-order');
insert into public.profiles values ('00000000-0000-0000-0000-0000000000aa', 'upstream-profile');
insert into public.legacy values (1, 'only upstream');
create or replace function public.slow(secs float) returns int language sql as 'select 1 from pg_sleep(secs)';
grant execute on function public.slow(float) to anon, authenticated, service_role;
insert into storage.buckets (id, name, public) values ('docs', 'docs', true), ('localonly', 'localonly', true),
  ('notmoved', 'notmoved', true);
create or replace function public.flaky() returns text language sql as $$ select 'answered upstream' $$;
create table if not exists public.notes (user_id uuid not null, body text not null);
alter table public.notes enable row level security;
create policy own_notes on public.notes for select to authenticated using (user_id = auth.uid());
grant select on public.notes to authenticated;
grant execute on function public.flaky() to anon, authenticated, service_role;
"""
LOCAL_SQL = """
create table if not exists public.orders (id uuid primary key default gen_random_uuid(), item text not null);
create table if not exists public.profiles (id uuid primary key, name text not null);
grant all on public.orders, public.profiles to anon, authenticated, service_role;
insert into public.orders (item) values ('local-order');
insert into public.profiles values ('00000000-0000-0000-0000-0000000000bb', 'local-profile');
insert into storage.buckets (id, name, public) values ('docs', 'docs', true), ('localonly', 'localonly', true);
-- Fails locally with an internal error (500): in fallback the upstream answers instead.
create or replace function public.flaky() returns text language plpgsql as $$
begin raise exception 'local side broken' using errcode = 'XX000'; end $$;
grant execute on function public.flaky() to anon, authenticated, service_role;
"""
PASSWORD = "correct horse 42"
SHARED_SECRET = "the-live-projects-hs256-secret-0123456789abcdef"  # the project's legacy JWT secret


def wait_table(handle: ServerHandle, table: str) -> None:
    headers = {"apikey": handle.service_key, "Authorization": f"Bearer {handle.service_key}"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if httpx.get(f"{handle.url}/rest/v1/{table}?limit=1", headers=headers).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{table} never appeared")


class Upstream:
    """The stand-in for the live project, restartable on the same port and database."""

    def __init__(self, tmp_root: Path, env: dict[str, str]) -> None:
        self.tmp_root, self.env = tmp_root, env
        self.handle = start_server(tmp_root, env)

    def stop(self) -> None:
        self.handle.stop()

    def start(self) -> None:
        self.handle = start_server(self.tmp_root, self.env, data_dir=self.handle.data_dir, port=self.handle.port)


@pytest.fixture(scope="session")
def upstream(tmp_root: Path, pg_admin_url: str) -> Iterator[Upstream]:
    env = {"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "bridge_up"),
           "OWNBASE_JWT_PRIVATE_KEY": generate_private_key_pem("RS256"), "OWNBASE_AUTH_AUTOCONFIRM": "true",
           "OWNBASE_JWT_SECRET": SHARED_SECRET,
           "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "bridge-upstream-storage")}
    up = Upstream(tmp_root, env)
    sql(up.handle, UPSTREAM_SQL)
    wait_table(up.handle, "legacy")
    yield up
    up.stop()


@pytest.fixture(scope="session")
def bridge_factory(tmp_root: Path, pg_admin_url: str, upstream: Upstream) -> Iterator[Callable[..., ServerHandle]]:
    started: list[ServerHandle] = []

    def make(env: dict[str, str], seed: bool = True) -> ServerHandle:
        up = upstream.handle
        full = {"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "bridge_local"),
                "OWNBASE_JWT_PRIVATE_KEY": generate_private_key_pem("RS256"),
                "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / f"bridge-local-{len(started)}"),
                "OWNBASE_BRIDGE_URL": up.url, "OWNBASE_BRIDGE_ANON_KEY": up.anon_key,
                "OWNBASE_BRIDGE_SERVICE_KEY": up.service_key, "OWNBASE_BRIDGE_STATS_FLUSH_SECONDS": "0.2",
                "OWNBASE_BRIDGE_MIRROR_MAX_BACKOFF": "1", **env}
        handle = start_server(tmp_root, full)
        started.append(handle)
        if seed:
            sql(handle, LOCAL_SQL)
            wait_table(handle, "orders")
        return handle

    yield make
    for handle in started:
        handle.stop()


def supa(handle: ServerHandle, key: str | None = None) -> Any:
    from supabase import create_client

    return create_client(handle.url, key or handle.anon_key)


def wait_until(fn: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def fuzz_no_5xx(handle: ServerHandle) -> None:
    """Bounded fuzz of the bridge layer: odd methods, paths, keys, profiles and bodies -> never 5xx."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    prefixes = st.sampled_from(["/rest/v1/", "/rest/v1/rpc/", "/storage/v1/object/", "/storage/v1/object/public/",
                                "/storage/v1/bucket/", "/auth/v1/", "/auth/v1/token", "/realtime/v1/api/"])
    segment = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_categories=("Cc", "Cs"),
                                    exclude_characters="?#/%"), max_size=12)
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)

    with httpx.Client(base_url=handle.url, timeout=30) as client:
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(method=st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]), prefix=prefixes,
               parts=st.lists(segment, max_size=3), query=st.sampled_from(
                   ["", "?grant_type=password", "?select=*", "?apikey=garbage", "?id=eq.1&limit=-1"]),
               apikey=st.one_of(st.just(handle.anon_key), header_text), bearer=header_text,
               profile=st.one_of(st.none(), header_text), body=st.one_of(
                   st.binary(max_size=300), st.just(b'{"email": "x@example.com", "password": 5}'),
                   st.just(b'{"email": [], "password": "pw"}'), st.just(b"[1,2")))
        def check(method: str, prefix: str, parts: list[str], query: str, apikey: str, bearer: str,
                  profile: str | None, body: bytes) -> None:
            headers = {"apikey": apikey, "authorization": f"Bearer {bearer}".strip(), "content-type": "application/json"}
            if profile is not None:
                headers["accept-profile"] = profile
            r = client.request(method, prefix + "/".join(parts) + query, headers=headers,
                               content=body if method not in ("GET", "HEAD") else None)
            assert r.status_code < 500, (method, prefix, parts, r.status_code, r.text[:300])

        check()

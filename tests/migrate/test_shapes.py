"""Table shapes the fixture lacks: a partitioned table, a materialized view, a column of the app's
own enum array type (text COPY), a table without a primary key, an app schema besides public."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any, Callable

import pytest

from tests.conftest import ServerHandle, create_database, sql
from tests.migrate.conftest import SKIPS, Source, migrate

SHAPES = """
create schema billing;
create type public.mood as enum ('happy', 'sad');
create table public.moods (id bigint generated always as identity primary key, moods public.mood[] not null,
                           note text);
insert into public.moods (moods, note) select array['happy', 'sad']::public.mood[], 'row ' || g
  from generate_series(1, 50) g;
create table billing.events (id bigint not null, at date not null, amount numeric(12, 2),
                             primary key (id, at)) partition by range (at);
create table billing.events_2024 partition of billing.events for values from ('2024-01-01') to ('2025-01-01');
create table billing.events_2025 partition of billing.events for values from ('2025-01-01') to ('2026-01-01');
insert into billing.events select g, date '2024-06-01' + (g % 400), g * 1.5 from generate_series(1, 300) g;
create table billing.log (line text);
insert into billing.log select 'line ' || g from generate_series(1, 20) g;
create materialized view billing.totals as select at, sum(amount) as total from billing.events group by at;
grant usage on schema billing to authenticated;
grant select on billing.events to authenticated;
"""


@pytest.fixture(scope="module")
def shaped_source(supabase_source: Source) -> Source:
    subprocess.run([str(supabase_source.bindir / "psql"), supabase_source.admin_url, "-v", "ON_ERROR_STOP=1",
                    "-c", "create database sb_shapes template sb_source"], check=True, capture_output=True)
    clone = dataclasses.replace(supabase_source, url=supabase_source.url.rsplit("/", 1)[0] + "/sb_shapes")
    subprocess.run([str(clone.bindir / "psql"), clone.url, "-v", "ON_ERROR_STOP=1", "-c", SHAPES], check=True,
                   capture_output=True)
    return clone


@pytest.fixture(scope="module")
def shaped_target(server_factory: Callable[..., ServerHandle], pg_admin_url: str, tmp_root: Any) -> ServerHandle:
    return server_factory({"OWNBASE_DATABASE_URL": create_database(pg_admin_url, "sb_shapes_t"),
                           "OWNBASE_STORAGE_LOCAL_DIR": str(tmp_root / "shapes-blobs")})


def test_other_shapes_move_and_verify(shaped_source: Source, shaped_target: ServerHandle) -> None:
    src = ["--from", shaped_source.url]
    migrate(shaped_target, "schema", *src, *SKIPS)
    report = shaped_target.data_dir.parent / "shapes-data.json"
    migrate(shaped_target, "data", *src, "--report", str(report))
    tables = {t["table"]: t for t in json.loads(report.read_text())["tables"]}
    assert tables["public.moods"]["format"] == "text" and tables["public.todos"]["format"] == "binary"
    assert tables["billing.events"]["rows"] == 300 and "billing.events_2024" not in tables
    assert tables["billing.log"]["rows"] == 20
    assert sql(shaped_target, "select count(*) as n from billing.events_2025")[0]["n"] == \
        int(shaped_source.psql("select count(*) from billing.events_2025"))
    assert sql(shaped_target, "select count(*) as n from billing.totals")[0]["n"] == \
        int(shaped_source.psql("select count(*) from billing.totals"))
    assert sql(shaped_target, "select moods::text as m from public.moods limit 1")[0]["m"] == "{happy,sad}"
    migrate(shaped_target, "users", *src)
    verify = shaped_target.data_dir.parent / "shapes-verify.json"
    proc = migrate(shaped_target, "verify", *src, "--report", str(verify), check=False)
    checks = {c["check"]: c["ok"] for c in json.loads(verify.read_text())["checks"]}
    for name in ("table public.moods", "table billing.events", "table billing.log", "grants", "policies"):
        assert checks[name], (name, proc.stdout)

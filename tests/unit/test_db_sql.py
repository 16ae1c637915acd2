"""ownbase/db/sql.py: the one identifier quoting every service uses (a security boundary).

The PostgreSQL tests send the quoted name back through the real parser: whatever the name holds,
it must come back as exactly one column whose name is what PostgreSQL stores for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownbase.db.sql import IdentifierError, clip_ident, quote_ident, quote_qualified


@pytest.mark.parametrize(("name", "quoted"), [
    ("plain", '"plain"'),
    ("MixedCase", '"MixedCase"'),
    ("select", '"select"'),  # reserved words stay names
    ('we"ird', '"we""ird"'),
    ('"', '""""'),
    ('""', '""""""'),
    ('a"; drop table x; --', '"a""; drop table x; --"'),
    ("with space", '"with space"'),
    ("bäckerei", '"bäckerei"'),
    ("表", '"表"'),
    ("emoji🙂", '"emoji🙂"'),
    ("back\\slash", '"back\\slash"'),  # no escape syntax inside a delimited identifier
    ("new\nline", '"new\nline"'),
])
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


def test_quote_qualified_quotes_every_part() -> None:
    assert quote_qualified("public", "t") == '"public"."t"'
    assert quote_qualified('s"x', "a.b") == '"s""x"."a.b"'  # a dot inside a part is not a separator
    assert quote_qualified("only") == '"only"'


@pytest.mark.parametrize(("bad", "sqlstate"), [
    ("", "42601"), ("a\x00b", "22021"), ("\x00", "22021"), ("\ud800", "22021"), ("a\udfffb", "22021")])
def test_names_postgres_cannot_hold_are_refused(bad: str, sqlstate: str) -> None:
    with pytest.raises(IdentifierError) as info:
        quote_ident(bad)
    assert info.value.sqlstate == sqlstate  # what PostgreSQL itself reports for this name
    with pytest.raises(IdentifierError):
        quote_qualified("public", bad)
    assert issubclass(IdentifierError, ValueError)


def test_postgres_reports_the_same_sqlstate_for_an_empty_name(pg, loop) -> None:
    with pytest.raises(asyncpg.PostgresError) as info:
        loop.run_until_complete(pg.fetch('select 1 as ""'))
    assert info.value.sqlstate == "42601"
    assert "zero-length delimited identifier" in str(info.value)


def test_no_parts_and_non_strings_are_refused() -> None:
    with pytest.raises(TypeError):
        quote_qualified()
    with pytest.raises(TypeError):
        quote_ident(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        quote_ident(b"bytes")  # type: ignore[arg-type]


def test_long_names_are_cut_to_63_bytes_like_postgres() -> None:
    assert clip_ident("a" * 63) == "a" * 63
    assert clip_ident("a" * 64) == "a" * 63
    assert quote_ident("a" * 100) == '"' + "a" * 63 + '"'
    # A quote is counted once (as stored), not twice (as written).
    assert quote_ident('"' * 70) == '"' + '""' * 63 + '"'
    # Never half a character: 62 ASCII bytes + a 2-byte letter would be 64 bytes, so it goes.
    assert clip_ident("a" * 62 + "ä") == "a" * 62
    assert clip_ident("a" * 61 + "ä" + "b") == "a" * 61 + "ä"
    assert len(clip_ident("表" * 30).encode()) == 63  # 21 three-byte characters
    assert len(clip_ident("🙂" * 20).encode()) == 60  # 15 four-byte characters; a 16th would be 64


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def pg(database_url: str, loop: asyncio.AbstractEventLoop) -> Iterator[asyncpg.Connection]:
    conn = loop.run_until_complete(asyncpg.connect(database_url))
    yield conn
    loop.run_until_complete(conn.close())


def _round_trip(pg: asyncpg.Connection, loop: asyncio.AbstractEventLoop, name: str) -> list[str]:
    row = loop.run_until_complete(pg.fetchrow(f"select 1 as {quote_ident(name)}"))
    return list(row.keys())


@pytest.mark.parametrize("name", [
    'we"ird', 'a", 2 as "b', '"', "表", "emoji🙂", "a" * 64, "a" * 62 + "ä", '"' * 70, "🙂" * 20, "x" * 1000,
])
def test_postgres_reads_the_quoted_name_back(pg, loop, name: str) -> None:
    assert _round_trip(pg, loop, name) == [clip_ident(name)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=80))
def test_any_name_is_one_identifier_to_postgres(pg, loop, name: str) -> None:
    assert _round_trip(pg, loop, name) == [clip_ident(name)]


def test_postgres_stores_the_clipped_name(pg, loop) -> None:
    name = "t" * 61 + "ä" + "_tail"
    q = quote_qualified("public", name)
    loop.run_until_complete(pg.execute(f"create table {q} ()"))
    stored = loop.run_until_complete(pg.fetchval(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relname like 'ttt%'"))
    assert stored == clip_ident(name) == "t" * 61 + "ä"
    loop.run_until_complete(pg.execute(f"drop table {q}"))

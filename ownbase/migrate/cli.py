"""``ownbase migrate <step>``: the typer sub-app (registered by ownbase/cli.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Optional

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table as RichTable

from ownbase.migrate import target
from ownbase.migrate.progress import StepError, write_report

app = typer.Typer(no_args_is_help=True, help="Move a Supabase project onto ownbase (see docs/migration/).")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="migrate")
out = Console()
err = Console(stderr=True)

FROM = typer.Option(..., "--from", help="Source database URL (the Supabase project's direct connection).")
DATA_DIR = typer.Option(None, help="Target data folder (default ./.ownbase; or OWNBASE_DATABASE_URL).")
REPORT = typer.Option(None, "--report", help="Write the step's JSON report to this file.")
FROM_OR_TO = typer.Option(None, "--from", help="Source database URL (the Supabase project's direct connection).")
TO = typer.Option(None, "--to", help="The way back: copy from ownbase INTO this Supabase-shaped database.")
REPLACE = typer.Option(False, "--replace", help="Make the target equal the source (the way back): replace rows.")


def _ends(source: Optional[str], to: Optional[str], data_dir: Optional[Path]) -> tuple[str, str]:
    """(source URL, target URL): Supabase -> ownbase with --from, ownbase -> Supabase with --to."""
    if bool(source) == bool(to):
        err.print("[red]error:[/red] give exactly one of --from (to ownbase) or --to (back to Supabase)")
        raise typer.Exit(2)
    own = _target(data_dir)[1]
    return (source, own) if source else (own, str(to))


def _target(data_dir: Optional[Path]) -> tuple[Any, str]:
    s = target.settings(data_dir)
    return s, target.database_url(s)


def _run(coro: Any, report: Optional[Path] = None, step: str = "") -> Any:
    """Run a step; a failure is one clear line (and the report says why), not a traceback."""
    try:
        return asyncio.run(coro)
    except StepError as exc:
        message, code = str(exc), exc.code
    except (asyncpg.PostgresError, OSError, httpx.HTTPError) as exc:
        message, code = f"{type(exc).__name__}: {exc}", 1
    err.print(f"[red]error:[/red] {message}")
    write_report(report, step, {"ok": False, "error": message})
    raise typer.Exit(code)


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    t = RichTable(title=title)
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    out.print(t)


@app.command()
def plan(
    source: str = FROM,
    data_dir: Optional[Path] = DATA_DIR,
    skip_extension: list[str] = typer.Option([], "--skip-extension", help="Extension to leave behind."),
    no_target: bool = typer.Option(False, "--no-target", help="Do not look at the target at all."),
    report: Optional[Path] = REPORT,
) -> None:
    """What will move and what needs attention. Nothing is written."""
    from ownbase.migrate import plan as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    url = None if no_target else _target(data_dir)[1]
    result = _run(step.build(source, url, set(skip_extension)), report, "plan")
    _table("tables", ["table", "rows (est.)", "bytes", "generated"],
           [[t["table"], t["rows_estimate"], t["bytes"], ", ".join(t["generated_columns"])] for t in result["tables"]])
    _table("extensions", ["extension", "schema", "on target", "action", "used by"],
           [[e["name"], e["schema"], e["on_target"], e["action"], ", ".join(e["dependents"])]
            for e in result["extensions"]])
    _table("auth and storage", ["what", "count"],
           [[f"auth.{k}", v] for k, v in result["auth"].items()]
           + [[f"hash {k}", v] for k, v in result["password_hashes"].items()]
           + [["buckets", len(result["storage"]["buckets"])], ["objects", result["storage"]["objects"]],
              ["object bytes", result["storage"]["bytes"]],
              ["realtime tables", ", ".join(result["realtime_publication"])],
              ["applied migrations", len(result["applied_migrations"])],
              ["estimated seconds", result["estimated_seconds"]]])
    for note in result["needs_attention"]:
        out.print(f"[yellow]attention:[/yellow] {note}")
    write_report(report, "plan", result)


@app.command()
def schema(
    source: str = FROM,
    data_dir: Optional[Path] = DATA_DIR,
    skip_extension: list[str] = typer.Option([], "--skip-extension", help="Extension to leave behind."),
    pg_dump: Optional[str] = typer.Option(None, help="pg_dump binary (default: the newest found)."),
    report: Optional[Path] = REPORT,
) -> None:
    """Create the app's schemas, grants, policies, auth triggers and migration history (one transaction)."""
    from ownbase.migrate import schema as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    _, url = _target(data_dir)
    result = _run(step.run(source, url, set(skip_extension), pg_dump), report, "schema")
    _table("schema", ["what", "result"], [[k, v] for k, v in result["summary"].items()])
    write_report(report, "schema", result)


@app.command()
def data(
    source: Optional[str] = FROM_OR_TO,
    to: Optional[str] = TO,
    data_dir: Optional[Path] = DATA_DIR,
    jobs: int = typer.Option(4, min=1, max=32, help="Tables copied at once."),
    table: list[str] = typer.Option([], "--table", help="Only these tables (schema.name)."),
    replace: bool = REPLACE,
    report: Optional[Path] = REPORT,
) -> None:
    """Copy app table data (binary COPY), set sequences; resumable per table."""
    from ownbase.migrate import data as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    src, tgt = _ends(source, to, data_dir)
    result = _run(step.run(src, tgt, jobs, set(table), replace=replace), report, "data")
    _table("data", ["table", "rows", "status"], [[t["table"], t["rows"], t["status"]] for t in result["tables"]])
    write_report(report, "data", result)


@app.command()
def sync(
    source: str = FROM,
    data_dir: Optional[Path] = DATA_DIR,
    jobs: int = typer.Option(4, min=1, max=32, help="Tables copied at once for the initial copy."),
    recopy: bool = typer.Option(False, "--recopy", help="Empty tables an earlier `data` run filled, copy again."),
    pause: bool = typer.Option(False, "--pause", help="Stop applying changes (the source keeps them)."),
    finish: bool = typer.Option(False, "--finish", help="Cut-over: set sequences, remove the replication."),
    show: bool = typer.Option(False, "--status", help="Only show the replication state and lag."),
    report: Optional[Path] = REPORT,
) -> None:
    """Follow the source's app tables by logical replication (initial copy included)."""
    from ownbase.migrate import sync as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    _, url = _target(data_dir)
    if pause:
        _run(step.pause(url), report, "sync")
        result: dict[str, Any] = {"ok": True, "paused": True}
    elif finish:
        result = _run(step.finish(source, url), report, "sync")
    elif show:
        result = _run(step.status(source, url), report, "sync")
    else:
        result = _run(step.start(source, url, jobs, recopy, target.settings(data_dir)), report, "sync")
    _table("sync", ["what", "value"], [[k, v] for k, v in result.items() if k not in ("copy",)])
    write_report(report, "sync", result)


@app.command()
def users(
    source: Optional[str] = FROM_OR_TO,
    to: Optional[str] = TO,
    replace: bool = REPLACE,
    data_dir: Optional[Path] = DATA_DIR,
    sessions: bool = typer.Option(False, "--sessions", help="Also copy sessions and refresh tokens."),
    jwt_secret: Optional[str] = typer.Option(None, "--jwt-secret", help="The project's legacy HS256 JWT secret."),
    trust_jwks: Optional[str] = typer.Option(None, "--trust-jwks", help="The project's JWKS URL (asymmetric keys)."),
    report: Optional[Path] = REPORT,
) -> None:
    """Copy auth.users and auth.identities (same ids, same hashes); optionally sessions."""
    from ownbase.migrate import users as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    s = target.settings(data_dir)
    src, tgt = _ends(source, to, data_dir)
    result = _run(step.run(src, tgt, sessions, jwt_secret, s, replace=replace, trust_jwks=trust_jwks),
                  report, "users")
    _table("users", ["table", "source", "copied"], [[k, v["source"], v["copied"]] for k, v in result["tables"].items()])
    for note in result["notes"]:
        out.print(f"[yellow]note:[/yellow] {note}")
    write_report(report, "users", result)


@app.command()
def files(
    source: Optional[str] = FROM_OR_TO,
    to: Optional[str] = TO,
    from_url: Optional[str] = typer.Option(None, "--from-url", help="Source project URL (https://<ref>.supabase.co)."),
    from_service_key: Optional[str] = typer.Option(None, "--from-service-key", help="Source service_role key."),
    from_s3_endpoint: Optional[str] = typer.Option(
        None, "--from-s3-endpoint",
        help="Read bytes from the project's S3 endpoint (https://<ref>.supabase.co/storage/v1/s3)."),
    from_s3_key_id: Optional[str] = typer.Option(None, "--from-s3-key-id", help="S3 access key id."),
    from_s3_secret: Optional[str] = typer.Option(None, "--from-s3-secret", help="S3 secret access key."),
    from_s3_region: str = typer.Option("us-east-1", "--from-s3-region", help="The project's region."),
    to_url: Optional[str] = typer.Option(None, "--to-url", help="The way back: the project URL to upload to."),
    to_service_key: Optional[str] = typer.Option(None, "--to-service-key", help="The way back: its service key."),
    replace: bool = REPLACE,
    data_dir: Optional[Path] = DATA_DIR,
    jobs: int = typer.Option(8, min=1, max=64, help="Objects transferred at once."),
    bucket: list[str] = typer.Option([], "--bucket", help="Only these buckets."),
    batch: int = typer.Option(200, min=1, max=10_000, help="Objects per recorded resume point."),
    sync_: bool = typer.Option(False, "--sync", help="Catch up: copy new and changed objects, delete those gone"
                                                      " from the source, update bucket settings."),
    every: float = typer.Option(0, "--every", min=0, help="With --sync: repeat the pass every SECONDS until"
                                                          " interrupted (0: once)."),
    report: Optional[Path] = REPORT,
) -> None:
    """Copy buckets, storage.objects rows and their bytes; resumable per bucket. --sync catches up later."""
    from ownbase.migrate import files as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    s, url = _target(data_dir)
    if to:
        from ownbase.migrate import files_back  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

        if not (to_url and to_service_key):
            err.print("[red]error:[/red] the way back needs --to-url and --to-service-key")
            raise typer.Exit(2)
        back = _run(files_back.run(url, s, to, to_url, to_service_key, jobs, set(bucket), replace), report, "files")
        _table("files (way back)", ["bucket", "uploaded", "bytes", "deleted", "failed"],
               [[b["bucket"], b["uploaded"], b["bytes"], b["deleted"], len(b["failed"])] for b in back["buckets"]])
        write_report(report, "files", back)
        raise typer.Exit(0 if back["ok"] else 1)
    s3 = None
    if from_s3_endpoint:
        from ownbase.migrate.sources import S3Source  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

        if not (from_s3_key_id and from_s3_secret):
            err.print("[red]error:[/red] --from-s3-endpoint needs --from-s3-key-id and --from-s3-secret")
            raise typer.Exit(2)
        s3 = S3Source(from_s3_endpoint, from_s3_key_id, from_s3_secret, from_s3_region)
    if not source or not (s3 or (from_url and from_service_key)):
        err.print("[red]error:[/red] give --from and either --from-url with --from-service-key or the --from-s3-*"
                  " options (or --to for the way back)")
        raise typer.Exit(2)
    if sync_:
        from ownbase.migrate import files_sync  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

        def one_pass() -> bool:
            synced = _run(files_sync.run(source, from_url, from_service_key, url, s, jobs, set(bucket), batch, s3),
                          report, "files")
            _table("files --sync", ["bucket", "added", "updated", "deleted", "unchanged", "mismatches"],
                   [[b["bucket"], b["added"], b["updated"], b["deleted"], b["unchanged"], len(b["mismatches"])]
                    for b in synced["per_bucket"]])
            out.print(f"buckets: {synced['buckets']}")
            write_report(report, "files", synced)
            return bool(synced["ok"])

        if not every:
            raise typer.Exit(0 if one_pass() else 1)
        try:
            while True:  # a follower: a failed pass is reported and the next one retries (passes resume)
                try:
                    one_pass()
                except typer.Exit:
                    pass
                time.sleep(every)
        except KeyboardInterrupt:
            raise typer.Exit(0)
    result = _run(step.run(source, from_url, from_service_key, url, s, jobs, set(bucket), batch, s3), report,
                  "files")
    _table("files", ["bucket", "objects", "copied", "bytes", "mismatches"],
           [[b["bucket"], b["objects"], b["copied"], b["bytes"], len(b["mismatches"])] for b in result["buckets"]])
    write_report(report, "files", result)
    if any(b["mismatches"] for b in result["buckets"]):
        raise typer.Exit(1)


@app.command("rewrite-urls")
def rewrite_urls(
    source_url: str = typer.Option(..., "--from-url", help="Old project URL (https://<ref>.supabase.co)."),
    data_dir: Optional[Path] = DATA_DIR,
    to_url: Optional[str] = typer.Option(None, "--to-url", help="New public URL (default: the target's)."),
    column: list[str] = typer.Option([], "--column", help="Only these columns (schema.table.column)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count the values per column."),
    report: Optional[Path] = REPORT,
) -> None:
    """Rewrite stored https://<ref>.supabase.co/storage/v1/... URLs to the ownbase public URL."""
    from ownbase.migrate import urls as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    s, url = _target(data_dir)
    result = _run(step.run(url, source_url, to_url or s.public_url or s.api_url, set(column), dry_run), report,
                  "rewrite-urls")
    _table("rewrite-urls" + (" (dry run)" if dry_run else ""), ["column", "rows"],
           [[c["column"], c["rows"]] for c in result["columns"]])
    for note in result["notes"]:
        out.print(f"[yellow]note:[/yellow] {note}")
    write_report(report, "rewrite-urls", result)


@app.command()
def verify(
    source: str = FROM,
    data_dir: Optional[Path] = DATA_DIR,
    report: Optional[Path] = REPORT,
) -> None:
    """Compare source and target: rows, users, objects, policies and grants. Exit 1 on a mismatch."""
    from ownbase.migrate import verify as step  # noqa: PLC0415 - a step's module loads only when it runs (every command registers this file)

    s, url = _target(data_dir)
    result = _run(step.run(source, url, s), report, "verify")
    _table("verify", ["check", "source", "target", "ok"],
           [[c["check"], c["source"], c["target"], "yes" if c["ok"] else "[red]NO[/red]"] for c in result["checks"]])
    for m in result["mismatches"]:
        out.print(f"[red]mismatch:[/red] {m}")
    write_report(report, "verify", result)
    if result["mismatches"]:
        raise typer.Exit(1)

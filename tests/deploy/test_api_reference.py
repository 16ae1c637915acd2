"""The API reference generator: it runs, its pages are current, the OpenAPI documents cover
every route the apps mount, and a running ownbase's own /rest/v1/ document renders too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from starlette.routing import Mount, Route, WebSocketRoute

from ownbase.app import services
from tests.conftest import ServerHandle, sql

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "docs" / "api" / "generate.py"
sys.path.insert(0, str(GENERATOR.parent))
import generate  # noqa: E402

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _norm(path: str) -> str:
    # Parameter names may differ; a trailing slash is the same endpoint.
    return re.sub(r"\{[^}]+\}", "{}", path).rstrip("/") or "/"


def documented() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for spec in generate.load_specs().values():
        for method, path, _, _ in generate.operations(spec):
            out.setdefault(_norm(path), set()).add(method)
    return out


def mounted() -> list[tuple[str, set[str] | None, bool]]:
    """(path, methods or None for websockets/any, is_mount) of every route ownbase serves."""
    routes: list[tuple[str, set[str] | None, bool]] = [("/health", {"GET"}, False), ("/ready", {"GET"}, False)]
    for svc in services():
        for route in svc.routes:
            if isinstance(route, Mount):
                routes.append((route.path, None, True))
            elif isinstance(route, WebSocketRoute):
                routes.append((route.path, None, False))
            elif isinstance(route, Route):
                methods = set(route.methods or ()) - IGNORED_METHODS
                # A catch-all answering every method (Supabase-shaped 404/405) needs one entry.
                routes.append((route.path, None if len(methods) >= 5 or not methods else methods, False))
    return routes


def test_openapi_documents_cover_every_mounted_route() -> None:
    docs = documented()
    missing = []
    for path, methods, is_mount in mounted():
        key = _norm(path)
        if is_mount:
            if not any(p.startswith(key + "/") for p in docs):
                missing.append(f"{path} (mount)")
        elif key not in docs:
            missing.append(path)
        elif methods and not methods <= docs[key]:
            missing.append(f"{path} {sorted(methods - docs[key])}")
    assert missing == [], "routes without an OpenAPI entry in docs/api/openapi/: " + ", ".join(missing)


def test_generated_pages_are_current_and_generator_runs(tmp_path: Path) -> None:
    check = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    out = subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    pages = {p.name for p in tmp_path.glob("*.md")}
    assert {"README.md", "auth.md", "rest.md", "db.md", "storage.md", "realtime.md"} <= pages
    storage = (tmp_path / "storage.md").read_text()
    assert "## `POST /storage/v1/object/{bucket}/{path}`" in storage and "`x-upsert" not in storage.split("##")[0]


def test_project_rest_reference_from_a_running_server(server: ServerHandle, tmp_path: Path) -> None:
    sql(server, "create table if not exists public.api_ref_books (id bigint primary key, title text not null);"
                "notify pgrst, 'reload schema';")
    import time

    import httpx

    # The schema cache notices the NOTIFY within its poll interval; wait for the table to appear.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = httpx.get(server.url + "/rest/v1/api_ref_books", headers={"apikey": server.service_key,
                                                                      "Authorization": f"Bearer {server.service_key}"})
        if r.status_code == 200:
            break
        time.sleep(0.2)
    out = subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path), "--rest-openapi",
                          server.url + "/rest/v1/", "--apikey", server.service_key],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "project-rest.md").read_text()
    assert "`/api_ref_books`" in page and "`GET`" in page and "`POST`" in page
    assert "project-rest.md" in (tmp_path / "README.md").read_text()

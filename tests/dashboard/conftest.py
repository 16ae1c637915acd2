"""Dashboard fixtures: a server, admins made through the real CLI, signed-in HTTP clients."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from typing import Callable

import httpx
import pytest

from tests.conftest import ServerHandle

PASSWORD = "correct horse battery"


def create_admin(handle: ServerHandle, email: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    """`ownbase admin create EMAIL` exactly as a person runs it (password on stdin for the script)."""
    return subprocess.run(
        [sys.executable, "-m", "ownbase", "admin", "create", email, "--password-stdin",
         "--data-dir", str(handle.data_dir)],
        input=password + "\n", env=handle.env, capture_output=True, text=True, timeout=60,
        cwd=str(handle.data_dir.parent))


def sign_in(handle: ServerHandle, email: str, password: str = PASSWORD, **extra: str) -> httpx.Client:
    client = httpx.Client(base_url=handle.url, timeout=30)
    r = client.post("/dashboard/login", data={"email": email, "password": password, **extra})
    assert r.status_code == 303, r.text
    return client


def csrf_of(client: httpx.Client) -> str:
    html = client.get("/dashboard/").text
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture(scope="session")
def dash(server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    # Every test signs in from 127.0.0.1: a login budget that the suite cannot run out of
    # (test_login_rate_limited checks the limit on a server of its own).
    return server_factory({"OWNBASE_DASHBOARD_LOGIN_PER_WINDOW": "100000"})


@pytest.fixture()
def admin(dash: ServerHandle) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    out = create_admin(dash, email)
    assert out.returncode == 0, out.stderr
    return email


@pytest.fixture()
def signed_in(dash: ServerHandle, admin: str) -> tuple[httpx.Client, str]:
    client = sign_in(dash, admin)
    return client, csrf_of(client)

"""Redis is disposable: two processes keep serving REST and auth through a Redis outage, count rate
limits per process meanwhile, say so in /ready, and share counters again once Redis is back."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from ownbase.embedded import free_port
from tests.conftest import ServerHandle, sql, wait_for_port


class PrivateRedis:
    """A redis-server of this test alone, so it can be killed and restarted empty."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no goodbye to the clients
        self.proc.wait(10)


@pytest.fixture()
def private_redis(tmp_root: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_root)
    redis.start()
    yield redis
    if redis.proc is not None and redis.proc.poll() is None:
        redis.kill()


def _bad_login(srv: ServerHandle, email: str) -> int:
    r = httpx.post(srv.url + "/auth/v1/token?grant_type=password",
                   json={"email": email, "password": "x" * 8}, headers={"apikey": srv.anon_key}, timeout=10)
    return r.status_code


def _ready(srv: ServerHandle) -> httpx.Response:
    return httpx.get(srv.url + "/ready", timeout=10)


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_redis_outage_degrades_to_per_process_limits_and_recovers(
        private_redis: PrivateRedis, server_factory: Callable[..., ServerHandle]) -> None:
    env = {"OWNBASE_REDIS_URL": private_redis.url, "OWNBASE_AUTH_RATE_LIMIT_TOKEN": "4"}
    a, b = server_factory(env), server_factory(env)
    sql(a, "create table if not exists public.edge_outage (id int primary key, title text);"
           "grant select on public.edge_outage to anon; insert into public.edge_outage values (1, 'x')"
           " on conflict do nothing; notify pgrst, 'reload schema'")
    assert _wait(lambda: all(httpx.get(s.url + "/rest/v1/edge_outage", headers={"apikey": s.anon_key})
                             .status_code == 200 for s in (a, b)))
    for srv in (a, b):
        body = _ready(srv).json()
        assert body["degraded"] == [] and body["components"]["rate_limits"]["counters"] == "redis"

    # Shared: four failed sign-ins spread over both processes use up one budget.
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    assert [_bad_login(s, email) for s in (a, b, a, b)] == [400] * 4
    assert _bad_login(a, email) == 429 and _bad_login(b, email) == 429

    # Load on both processes while Redis is killed underneath.
    statuses: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def load(srv: ServerHandle) -> None:
        with httpx.Client(base_url=srv.url, headers={"apikey": srv.anon_key}, timeout=10) as client:
            while not stop.is_set():
                try:
                    statuses.append(client.get("/rest/v1/edge_outage?select=id").status_code)
                    statuses.append(client.get("/auth/v1/settings").status_code)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    workers = [threading.Thread(target=load, args=(srv,)) for srv in (a, b, a, b)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    private_redis.kill()
    time.sleep(2)
    stop.set()
    for w in workers:
        w.join(30)
    assert errors == []
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))

    # Degraded, still ready by default, and visible.
    for srv in (a, b):
        r = _ready(srv)
        assert r.status_code == 200
        body = r.json()
        # Realtime lists itself too once its own probe has seen the outage (in-process fan-out).
        assert "rate_limits" in body["degraded"] and set(body["degraded"]) <= {"rate_limits", "realtime"}
        assert all(body["components"][name]["cause"] == "redis" for name in body["degraded"])
        state = body["components"]["rate_limits"]
        assert state["counters"] == "local" and state["cause"] == "redis" and state["outages"] == 1
    # Per process now: each process has its own fresh budget of four.
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    for srv in (a, b):
        assert [_bad_login(srv, email) for _ in range(4)] == [400] * 4
        assert _bad_login(srv, email) == 429
    r = httpx.get(a.url + "/rest/v1/edge_outage?select=id", headers={"apikey": a.anon_key})
    assert r.status_code == 200 and r.json() == [{"id": 1}]

    # Redis comes back empty on the same port: both processes go back to shared counters.
    private_redis.start()
    assert _wait(lambda: all(_ready(s).json()["degraded"] == [] for s in (a, b))), _ready(a).json()
    assert _ready(a).json()["components"]["rate_limits"]["counters"] == "redis"
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    assert [_bad_login(s, email) for s in (a, b, a, b)] == [400] * 4
    assert _bad_login(a, email) == 429 and _bad_login(b, email) == 429
    assert "redis unreachable" in a.log() and "redis is back" in a.log()


def test_ready_can_require_redis(private_redis: PrivateRedis,
                                 server_factory: Callable[..., ServerHandle]) -> None:
    srv = server_factory({"OWNBASE_REDIS_URL": private_redis.url, "OWNBASE_READY_REQUIRE_REDIS": "true"})
    assert _ready(srv).status_code == 200
    private_redis.kill()
    # The next limited request notices the outage; /ready then takes the process out of rotation.
    assert httpx.get(srv.url + "/auth/v1/settings", headers={"apikey": srv.anon_key}).status_code == 200
    r = _ready(srv)
    assert r.status_code == 503 and "rate_limits" in r.json()["degraded"]
    private_redis.start()
    assert _wait(lambda: _ready(srv).status_code == 200)

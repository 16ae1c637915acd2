"""The container's entry point: ``python -m ownbase.aws.container [ownbase args]``.

It turns what the container is given into an ``ownbase`` command line and execs it:
- worker processes from the CPU the container may use (ECS task metadata, else the cgroup
  quota, else the CPU count),
  unless OWNBASE_WORKERS or --workers says otherwise; more than one only with Redis, since
  ``ownbase start`` needs Redis to share state between processes;
- OWNBASE_DATABASE_URL / OWNBASE_REDIS_URL from secret parts (see ownbase.aws.secrets).
``--print-command`` prints the command and the composed variable names instead of running it
(how the tests exercise the image's start-up outside a container).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import urllib.request
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from ownbase.aws.secrets import compose

CGROUP_DIR = "ENTRYPOINT_CGROUP_DIR"  # where cpu.max lives (tests point it at a fake)
CPUS = "ENTRYPOINT_CPUS"  # explicit CPU count (tests, or a host that misreports it)


def cpu_count(env: Mapping[str, str]) -> float:
    if env.get(CPUS):
        return max(float(env[CPUS]), 0.0)
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    # On ECS the task's share is in the task metadata ("Limits": {"CPU": 0.5}); the machine under
    # a 0.5 vCPU Fargate task still shows 2 CPUs, and the limit may sit on the task's cgroup only.
    task_cpu = _ecs_task_cpu(env)
    if task_cpu:
        return min(cpus, task_cpu)
    return min(cpus, _cgroup_cpu(Path(env.get(CGROUP_DIR, "/sys/fs/cgroup"))) or cpus)


def _ecs_task_cpu(env: Mapping[str, str]) -> float | None:
    base = env.get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        return None
    try:
        with urllib.request.urlopen(base.rstrip("/") + "/task", timeout=2) as response:  # noqa: S310 - link-local
            limits = json.loads(response.read()).get("Limits") or {}
        value = float(limits.get("CPU") or 0)
    except (OSError, ValueError, AttributeError):
        return None
    # Older platform versions report CPU units (512) instead of vCPUs (0.5).
    return value / 1024 if value > 64 else value or None


def _cgroup_cpu(root: Path) -> float | None:
    try:  # cgroup v2: "max 100000" (no limit) or "<quota> <period>", e.g. "50000 100000"
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: quota -1 means no limit
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 else None
    except (OSError, ValueError):
        return None


def workers_for(env: Mapping[str, str]) -> int:
    if not env.get("OWNBASE_REDIS_URL"):
        return 1  # processes could not share rate limits, presence or fan-out
    # One uvicorn process per whole CPU; a fractional share still gets one.
    return max(1, math.floor(cpu_count(env)))


def build_command(argv: Sequence[str], env: MutableMapping[str, str]) -> list[str]:
    args = list(argv) or ["start"]
    compose(env)
    if args[0] == "start" and not env.get("OWNBASE_WORKERS") and not any(
        a == "--workers" or a.startswith("--workers=") for a in args
    ):
        args += ["--workers", str(workers_for(env))]
    return ["ownbase", *args]


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    dry = "--print-command" in args
    args = [a for a in args if a != "--print-command"]
    env = os.environ
    command = build_command(args, env)
    if dry:
        print(shlex.join(command))
        for name in ("OWNBASE_DATABASE_URL", "OWNBASE_DATABASE_READ_URL", "OWNBASE_REDIS_URL"):
            print(f"{name}={'set' if env.get(name) else 'unset'}")
        return
    # exec: ownbase becomes the process ECS signals (SIGTERM -> graceful drain).
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()

"""The AWS docs: every shell snippet parses (bash -n), every config snippet is valid config, and
the costs page's "small" column is the stack's defaults."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ownbase_cdk.config import DeployConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs" / "aws").glob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(lang: tuple[str, ...]) -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) in lang:
                line = text[: match.start()].count("\n") + 1
                out.append((doc.name, line, match.group(2)))
    return out


def test_the_four_guides_exist() -> None:
    names = [d.name for d in DOCS]
    assert names == ["01-account.md", "02-deploy.md", "03-operations.md", "04-lambda.md"]
    assert (ROOT / "docs" / "costs.md").exists()


@pytest.mark.parametrize("doc,line,code", blocks(("bash", "sh", "shell")),
                         ids=lambda v: v if isinstance(v, str) and v.endswith(".md") else None)
def test_shell_snippets_parse(doc: str, line: int, code: str) -> None:
    result = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
    assert result.returncode == 0, f"{doc}:{line}: {result.stderr}"


def test_there_are_shell_snippets_to_check() -> None:
    assert len(blocks(("bash", "sh", "shell"))) >= 20


def test_config_snippets_are_valid_config() -> None:
    checked = 0
    for doc, line, code in blocks(("yaml",)):
        data = yaml.safe_load(code)
        assert isinstance(data, dict), f"{doc}:{line}"
        DeployConfig.model_validate(data)  # strict: a renamed knob fails here
        checked += 1
    assert checked >= 3


def test_costs_small_column_is_the_default_stack() -> None:
    cfg = DeployConfig()
    costs = (ROOT / "docs" / "costs.md").read_text()
    assert cfg.service.cpu == 512 and cfg.service.memory_mib == 1024 and "1 × 0.5 vCPU / 1 GB" in costs
    assert f"db.{cfg.database.instance_type}, {cfg.database.allocated_storage_gb} GB" in costs
    assert cfg.network.egress == "nat" and "1 NAT" in costs
    assert "us-east-1" in costs and "2026-12" in costs

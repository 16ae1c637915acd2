"""Which function goes where: OWNBASE_FUNCTIONS (JSON or a functions.toml path) or <data dir>/functions.toml.

    [hello]                       # or JSON: {"hello": {"lambda": "arn:aws:lambda:..."}}
    lambda = "arn:aws:lambda:eu-west-1:123456789012:function:hello"
    [api]
    url = "http://api.internal:8080"
    public = true                 # verify_jwt = false also works (supabase/config.toml's name)
    [dev]
    command = "python fn.py"
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class FunctionsConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Function:
    name: str
    kind: str  # "lambda" | "url" | "command"
    target: str
    public: bool = False  # no JWT check (Supabase's verify_jwt = false)
    region: str = ""  # Lambda: region when the target is a bare name


def _one(name: str, spec: Any) -> Function:
    if not NAME.match(name) or not isinstance(spec, dict):
        raise FunctionsConfigError(f"function {name!r}: expected a name of letters, digits, - or _ "
                                   "and a table with one of lambda, url, command")
    kinds = [k for k in ("lambda", "url", "command") if spec.get(k)]
    if len(kinds) != 1 or not isinstance(spec[kinds[0]], str):
        raise FunctionsConfigError(f"function {name!r}: set exactly one of lambda, url, command")
    kind = kinds[0]
    if kind == "url" and not spec["url"].startswith(("http://", "https://")):
        raise FunctionsConfigError(f"function {name!r}: url must start with http:// or https://")
    if kind == "command" and not shlex.split(spec["command"]):
        raise FunctionsConfigError(f"function {name!r}: empty command")
    public = bool(spec.get("public", False)) or spec.get("verify_jwt") is False
    return Function(name, kind, spec[kind], public, str(spec.get("region", "")))


def load_functions(value: str, data_dir: Path) -> dict[str, Function]:
    text, source = value.strip(), "OWNBASE_FUNCTIONS"
    if not text:
        default = Path(data_dir) / "functions.toml"
        if not default.exists():
            return {}
        text, source = "@" + str(default), str(default)
    try:
        if text.startswith("{"):
            raw = json.loads(text)
        else:
            path = Path(text.removeprefix("@"))
            source = str(path)
            raw = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FunctionsConfigError(f"{source}: {exc}") from None
    if not isinstance(raw, dict):
        raise FunctionsConfigError(f"{source}: expected a table of functions")
    return {name: _one(name, spec) for name, spec in raw.items()}

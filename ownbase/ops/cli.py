"""`ownbase keys rotate`, `ownbase backup`, `ownbase restore`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ownbase import cli


def register(app: typer.Typer) -> None:
    keys = cli.group("keys", "Signing keys.")

    @keys.command("rotate")
    def rotate_cmd(
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (settings mode: the values to set)."),
    ) -> None:
        """Advance a signing-key rotation by one step (create the next key, or make it the signing key)."""
        from ownbase.ops.keyrotation import as_json as step_json
        from ownbase.ops.keyrotation import describe, rotate

        cfg = cli.settings(data_dir=data_dir)
        try:
            step = rotate(cfg)
        except ValueError as exc:
            cli.fail(str(exc))
        if as_json:
            sys.stdout.write(json.dumps(step_json(step)) + "\n")
            return
        cli.console.print(describe(step, not cfg.jwt_private_key), soft_wrap=True, highlight=False, markup=False)
        for name, value in step.settings.items():
            sys.stdout.write(f"{name}={json.dumps(value)}\n")

#!/usr/bin/env python3
"""CDK entry point: `cdk synth` / `cdk deploy --all` from deploy/aws/.

The config file is config.yaml beside this file, or the one given with `-c config=PATH`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ownbase_cdk.app_builder import build  # noqa: E402
from ownbase_cdk.config import load_config  # noqa: E402

app = cdk.App()
path = app.node.try_get_context("config") or (HERE / "config.yaml")
config = load_config(path if Path(path).exists() else None)
build(app, config, code_dir=HERE / config.lambda_api.code_dir)
app.synth()

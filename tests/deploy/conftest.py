"""CDK tests: the app under deploy/aws is importable and jsii's Node stays quiet."""

from __future__ import annotations

import os
import sys
from pathlib import Path

AWS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "aws"
if str(AWS_DIR) not in sys.path:
    sys.path.insert(0, str(AWS_DIR))
# jsii prints a banner for Node releases past their end of life; the synth itself works.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

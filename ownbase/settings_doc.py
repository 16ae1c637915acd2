"""Render docs/settings.md from settings.py itself, so the table cannot drift from the code.

Run ``python -m ownbase.settings_doc > docs/settings.md``; a test checks the file is current.
"""

from __future__ import annotations

import inspect
import re

from ownbase import settings as settings_module
from ownbase.settings import Settings

_FIELD = re.compile(r"^    (\w+): [^=]+?= (.+?)(?:\s+#\s*(.*))?$")
_SECTION = re.compile(r"^    # --- (.+?) -+$")


def render() -> str:
    source = inspect.getsource(settings_module.Settings).splitlines()
    out = [
        "# Settings",
        "",
        "Every setting is an environment variable (or a line in `.env`). Invalid values stop start-up",
        "with a message naming the variable. Lists are comma-separated. This file is generated from",
        "`ownbase/settings.py` by `python -m ownbase.settings_doc > docs/settings.md`.",
        "",
    ]
    fields = Settings.model_fields
    for line in source:
        section = _SECTION.match(line)
        if section:
            out += ["", f"## {section.group(1).strip().capitalize()}", "",
                    "| variable | default | meaning |", "| --- | --- | --- |"]
            continue
        match = _FIELD.match(line)
        if not match or match.group(1) not in fields:
            continue
        name = match.group(1)
        default = fields[name].default
        if isinstance(default, list):
            shown = ",".join(default) if default else "(empty)"
        elif default == "":
            shown = "(empty)"
        else:
            shown = str(default)
        comment = (match.group(3) or "").replace("|", "\\|")
        out.append(f"| `OWNBASE_{name.upper()}` | `{shown}` | {comment} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")

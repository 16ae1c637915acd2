"""The image's HEALTHCHECK: exit 0 when GET /ready answers 200, else 1.

Stdlib only and no shell, so it works in the slim image (no curl) on any architecture.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(url: str, timeout: float = 4.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> None:
    port = os.environ.get("OWNBASE_PORT", "54321")
    url = sys.argv[1] if len(sys.argv) > 1 else f"http://127.0.0.1:{port}/ready"
    sys.exit(0 if check(url) else 1)


if __name__ == "__main__":
    main()

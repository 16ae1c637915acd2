"""Placeholder; replaced below."""
from __future__ import annotations
from ownbase.context import Context


async def install(ctx: Context) -> None:
    raise RuntimeError("Cognito support is not built yet")

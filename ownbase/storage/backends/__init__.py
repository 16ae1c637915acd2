"""Blob backends behind one small interface (see ``base.Backend``)."""

from __future__ import annotations

from ownbase.settings import Settings
from ownbase.storage.backends.base import Backend
from ownbase.storage.backends.local import LocalBackend
from ownbase.storage.backends.s3 import S3Backend


def build_backend(settings: Settings) -> Backend:
    if settings.storage_backend == "s3":
        return S3Backend(settings)

    root = settings.storage_local_dir or str(settings.data_dir / "storage")
    return LocalBackend(root)

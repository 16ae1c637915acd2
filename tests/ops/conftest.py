"""The SeaweedFS S3 server of the storage tests, for backup/restore against a real S3."""

from tests.storage.conftest import s3_server  # noqa: F401 - a fixture, registered by import

"""Bucket routes through storage3."""

from __future__ import annotations

import pytest
from storage3.exceptions import StorageApiError

from tests.storage.conftest import StorageTarget, http, sb, unique


def test_bucket_crud(target: StorageTarget, admin) -> None:
    name = unique()
    assert admin.storage.create_bucket(name, options={"public": True, "file_size_limit": "20mb",
                                                      "allowed_mime_types": ["image/*"]}) == {"name": name}
    got = admin.storage.get_bucket(name)
    assert got.id == name and got.public is True
    assert got.file_size_limit == 20_000_000 and got.allowed_mime_types == ["image/*"]
    assert name in [b.id for b in admin.storage.list_buckets()]
    assert admin.storage.update_bucket(name, {"public": False, "file_size_limit": 1024,
                                              "allowed_mime_types": []}) == {"message": "Successfully updated"}
    got = admin.storage.get_bucket(name)
    assert got.public is False and got.file_size_limit == 1024 and got.allowed_mime_types is None
    with pytest.raises(StorageApiError) as err:
        admin.storage.create_bucket(name)
    assert str(err.value.status) == "409" and err.value.code == "Duplicate"
    assert admin.storage.delete_bucket(name) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as err:
        admin.storage.get_bucket(name)
    assert str(err.value.status) == "404" and err.value.code == "Bucket not found"


def test_delete_only_when_empty_and_empty(target: StorageTarget, admin) -> None:
    name = unique()
    admin.storage.create_bucket(name)
    admin.storage.from_(name).upload("f/1.txt", b"1")
    admin.storage.from_(name).upload("2.txt", b"2")
    with pytest.raises(StorageApiError) as err:
        admin.storage.delete_bucket(name)
    assert str(err.value.status) == "409"
    assert err.value.message == "The bucket you tried to delete is not empty"
    assert "message" in admin.storage.empty_bucket(name)
    assert admin.storage.from_(name).list() == []
    assert target.blob_keys(name) == []
    admin.storage.delete_bucket(name)


def test_bucket_validation_and_list_shape(target: StorageTarget, admin) -> None:
    with http(target, target.server.service_key) as c:
        r = c.post("/bucket", json={"name": "bad/name"})
        assert r.status_code == 400 and r.json()["code"] == "InvalidBucketName"
        r = c.post("/bucket", json={"name": unique(), "file_size_limit": "lots"})
        assert r.status_code == 400 and r.json()["message"].startswith("Invalid file size format")
        r = c.post("/bucket", json={})
        assert r.json()["message"] == "body must have required property 'name'"
        name = unique()
        c.post("/bucket", json={"name": name}).raise_for_status()
        listed = [b for b in c.get("/bucket").json() if b["id"] == name][0]
        assert set(listed) >= {"id", "name", "owner", "public", "file_size_limit", "allowed_mime_types",
                               "created_at", "updated_at", "type"}
        assert listed["type"] == "STANDARD" and listed["created_at"].endswith("Z")
        r = c.get("/bucket", params={"search": name})
        assert [b["id"] for b in r.json()] == [name]


def test_anon_cannot_see_or_create_buckets_without_policies(target: StorageTarget, admin) -> None:
    name = unique()
    admin.storage.create_bucket(name, options={"public": True})
    anon = sb(target, target.server.anon_key)
    assert name not in [b.id for b in anon.storage.list_buckets()]
    with pytest.raises(StorageApiError) as err:
        anon.storage.create_bucket(unique())
    assert str(err.value.status) == "403"
    assert "row-level security" in err.value.message

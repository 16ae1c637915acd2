"""RLS matrix with Supabase-style policies: each user writes only under ``auth.uid()::text`` as first
folder; a public bucket is readable by anon; a private one is not. Refused writes store nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError

from tests.conftest import sql
from tests.storage.conftest import StorageTarget, sb

POLICIES = """
do $$
begin
  if not exists (select 1 from pg_policies where schemaname = 'storage' and policyname = 'rls test: own folder insert') then
    create policy "rls test: own folder insert" on storage.objects for insert to authenticated
      with check (bucket_id like 'rlst-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "rls test: own folder select" on storage.objects for select to authenticated
      using (bucket_id like 'rlst-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "rls test: own folder update" on storage.objects for update to authenticated
      using (bucket_id like 'rlst-%' and (storage.foldername(name))[1] = auth.uid()::text)
      with check (bucket_id like 'rlst-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "rls test: own folder delete" on storage.objects for delete to authenticated
      using (bucket_id like 'rlst-%' and (storage.foldername(name))[1] = auth.uid()::text);
    create policy "rls test: public read" on storage.objects for select to anon, authenticated
      using (bucket_id like 'rlst-pub-%');
    create policy "rls test: image extension" on storage.objects as restrictive for insert to authenticated
      with check (bucket_id not like 'rlst-img-%' or storage.extension(name) = 'png');
  end if;
end
$$;
"""


@pytest.fixture()
def world(target: StorageTarget, admin: Any, mint: Any) -> dict[str, Any]:
    sql(target.server, POLICIES)
    suffix = uuid.uuid4().hex[:8]
    priv, pub = f"rlst-priv-{suffix}", f"rlst-pub-{suffix}"
    admin.storage.create_bucket(priv)
    admin.storage.create_bucket(pub, options={"public": True})
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "priv": priv, "pub": pub, "a": a, "b": b,
        "A": sb(target, target.server.anon_key, mint(a)),
        "B": sb(target, target.server.anon_key, mint(b)),
        "anon": sb(target, target.server.anon_key),
    }


def test_users_write_only_their_own_folder(target: StorageTarget, world: dict[str, Any]) -> None:
    A, priv, a, b = world["A"], world["priv"], world["a"], world["b"]
    res = A.storage.from_(priv).upload(f"{a}/avatar.png", b"mine")
    assert res.full_path == f"{priv}/{a}/avatar.png"
    row = sql(target.server, "select owner::text, owner_id from storage.objects where bucket_id = $1", priv)[0]
    assert row["owner"] == a and row["owner_id"] == a
    with pytest.raises(StorageApiError) as err:
        A.storage.from_(priv).upload(f"{b}/intruder.png", b"not mine")
    assert str(err.value.status) == "403"
    assert err.value.message == "new row violates row-level security policy"
    with pytest.raises(StorageApiError):
        world["anon"].storage.from_(priv).upload(f"{a}/anon.png", b"anon")
    # Refused uploads stored no blob and no row.
    keys = target.blob_keys(priv)
    assert len(keys) == 1 and keys[0].startswith(f"{a}/avatar.png/")
    assert len(sql(target.server, "select 1 from storage.objects where bucket_id = $1", priv)) == 1


def test_read_list_delete_follow_policies(target: StorageTarget, world: dict[str, Any]) -> None:
    A, B, anon, priv, a, b = world["A"], world["B"], world["anon"], world["priv"], world["a"], world["b"]
    A.storage.from_(priv).upload(f"{a}/doc.txt", b"A's doc")
    B.storage.from_(priv).upload(f"{b}/doc.txt", b"B's doc")
    assert A.storage.from_(priv).download(f"{a}/doc.txt") == b"A's doc"
    for client in (B, anon):
        with pytest.raises(StorageApiError) as err:
            client.storage.from_(priv).download(f"{a}/doc.txt")
        assert str(err.value.status) == "404"
    assert [e["name"] for e in A.storage.from_(priv).list()] == [a]
    assert [e["name"] for e in B.storage.from_(priv).list()] == [b]
    assert anon.storage.from_(priv).list() == []
    # B cannot overwrite or delete A's object; the bytes stay A's.
    with pytest.raises(StorageApiError):
        B.storage.from_(priv).update(f"{a}/doc.txt", b"defaced")
    assert B.storage.from_(priv).remove([f"{a}/doc.txt"]) == []
    assert A.storage.from_(priv).download(f"{a}/doc.txt") == b"A's doc"
    # B cannot sign a URL for A's object, nor move it into B's folder.
    assert B.storage.from_(priv).create_signed_urls([f"{a}/doc.txt"], 60)[0]["signedURL"] is None
    with pytest.raises(StorageApiError):
        B.storage.from_(priv).move(f"{a}/doc.txt", f"{b}/stolen.txt")
    # A may replace and delete its own object.
    A.storage.from_(priv).update(f"{a}/doc.txt", b"A v2")
    assert A.storage.from_(priv).download(f"{a}/doc.txt") == b"A v2"
    assert [r["name"] for r in A.storage.from_(priv).remove([f"{a}/doc.txt"])] == [f"{a}/doc.txt"]
    assert all(not k.startswith(f"{a}/") for k in target.blob_keys(priv))


def test_public_bucket_readable_by_anon_private_not(target: StorageTarget, world: dict[str, Any]) -> None:
    A, anon, pub, priv, a = world["A"], world["anon"], world["pub"], world["priv"], world["a"]
    A.storage.from_(pub).upload(f"{a}/pic.png", b"public bytes")
    A.storage.from_(priv).upload(f"{a}/pic.png", b"private bytes")
    url = anon.storage.from_(pub).get_public_url(f"{a}/pic.png")
    assert url == f"{target.url}/storage/v1/object/public/{pub}/{a}/pic.png"
    r = httpx.get(url)  # a browser: no key at all
    assert r.status_code == 200 and r.content == b"public bytes"
    assert anon.storage.from_(pub).download(f"{a}/pic.png") == b"public bytes"
    r = httpx.get(f"{target.url}/storage/v1/object/public/{priv}/{a}/pic.png")
    assert r.status_code == 400 and r.json()["statusCode"] == "404"
    with pytest.raises(StorageApiError):
        anon.storage.from_(priv).download(f"{a}/pic.png")


def test_policy_functions_run_unchanged(target: StorageTarget, world: dict[str, Any], admin: Any) -> None:
    A, a = world["A"], world["a"]
    img = "rlst-img-" + uuid.uuid4().hex[:8]
    admin.storage.create_bucket(img)
    A.storage.from_(img).upload(f"{a}/ok.png", b"png")
    with pytest.raises(StorageApiError):
        A.storage.from_(img).upload(f"{a}/no.gif", b"gif")
    rows = sql(target.server, "select storage.foldername('a/b/c.tar.gz') as f, storage.filename('a/b/c.tar.gz') as n, "
               "storage.extension('a/b/c.tar.gz') as e")
    assert rows[0]["f"] == ["a", "b"] and rows[0]["n"] == "c.tar.gz" and rows[0]["e"] == "gz"


def test_bad_jwt_is_refused(target: StorageTarget, world: dict[str, Any], mint: Any) -> None:
    expired = sb(target, target.server.anon_key, mint(world["a"], ttl=-10))
    with pytest.raises(StorageApiError) as err:
        expired.storage.from_(world["priv"]).list()
    assert str(err.value.status) == "403"
    with httpx.Client(base_url=target.url + "/storage/v1") as c:
        r = c.post(f"/object/list/{world['priv']}", json={}, headers={"apikey": target.server.anon_key,
                                                                      "authorization": "Bearer not.a.jwt"})
        assert r.status_code == 400 and r.json()["statusCode"] == "403"

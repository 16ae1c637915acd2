"""Cognito tokens from moto's Cognito IdP server: accepted, linked to an existing user by verified
email; forged, other-client and other-pool tokens refused."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import httpx
import jwt
import pytest
from moto.server import ThreadedMotoServer
from postgrest.exceptions import APIError

from ownbase.embedded import free_port
from ownbase.keys import generate_private_key_pem
from tests.auth.conftest import py_client, unique_email
from tests.conftest import ServerHandle, sql

NEW = {"X-Supabase-Api-Version": "2024-01-01"}
REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _idp(endpoint: str) -> Any:
    return boto3.client("cognito-idp", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _pool(idp: Any) -> tuple[str, str]:
    pool = idp.create_user_pool(PoolName=f"p{time.time_ns()}")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="app",
                                         ReadAttributes=["email", "email_verified"],
                                         ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"])["UserPoolClient"]["ClientId"]
    return pool, client


def _tokens(idp: Any, pool: str, client: str, email: str, verified: bool = True) -> dict[str, str]:
    username = email.split("@")[0]
    attrs = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": str(verified).lower()}]
    idp.admin_create_user(UserPoolId=pool, Username=username, UserAttributes=attrs, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=username, Password="Passw0rd!x", Permanent=True)
    out = idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_NO_SRP_AUTH",
                                  AuthParameters={"USERNAME": username, "PASSWORD": "Passw0rd!x"})
    return out["AuthenticationResult"]


def _user(srv: ServerHandle, token: str) -> httpx.Response:
    return httpx.get(srv.url + "/auth/v1/user",
                     headers={"apikey": srv.anon_key, "Authorization": f"Bearer {token}", **NEW})


def test_cognito_tokens(moto_endpoint: str, server_factory: Callable[..., ServerHandle]) -> None:
    idp = _idp(moto_endpoint)
    pool, client = _pool(idp)
    srv = server_factory({
        "OWNBASE_AUTH_COGNITO_USER_POOL_ID": pool, "OWNBASE_AUTH_COGNITO_REGION": REGION,
        "OWNBASE_AUTH_COGNITO_CLIENT_IDS": client,
        "OWNBASE_AUTH_COGNITO_JWKS_URL": f"{moto_endpoint}/{pool}/.well-known/jwks.json",
        "OWNBASE_AUTH_COGNITO_ENDPOINT_URL": moto_endpoint, **CREDS,
    })
    # A migrated Supabase user; the same person signs in through Cognito with a verified email.
    email = unique_email("migrated")
    adm = py_client(srv, srv.service_key).auth.admin
    original = adm.create_user({"email": email, "password": "secret123", "email_confirm": True}).user
    toks = _tokens(idp, pool, client, email)
    # The access token carries no email: ownbase asks Cognito (GetUser) and links by verified email.
    r = _user(srv, toks["AccessToken"])
    assert r.status_code == 200, r.text
    assert r.json()["id"] == original.id
    # The ID token maps to the same user, through supabase-py too.
    got = py_client(srv).auth.get_user(toks["IdToken"])
    assert got is not None and got.user.id == original.id
    providers = {i.provider for i in got.user.identities or []}
    assert providers == {"email", "cognito"}
    links = sql(srv, "select provider_id from auth.identities where provider = 'cognito' and user_id = $1",
                __import__("uuid").UUID(original.id))
    assert len(links) == 1

    # Someone new gets a new user, linked once.
    fresh = unique_email("fresh")
    fresh_toks = _tokens(idp, pool, client, fresh)
    new_id = _user(srv, fresh_toks["IdToken"]).json()["id"]
    assert new_id != original.id and _user(srv, fresh_toks["AccessToken"]).json()["id"] == new_id

    # An unverified Cognito email never takes over an existing account.
    victim = unique_email("victim")
    victim_id = adm.create_user({"email": victim, "password": "secret123", "email_confirm": True}).user.id
    unverified = _tokens(idp, pool, client, victim, verified=False)
    assert _user(srv, unverified["IdToken"]).json()["id"] != victim_id

    # Forged: right issuer and kid, wrong key.
    claims = jwt.decode(toks["IdToken"], options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": int(time.time()) + 600}, generate_private_key_pem("RS256"),
                        algorithm="RS256", headers={"kid": jwt.get_unverified_header(toks["IdToken"])["kid"]})
    bad = _user(srv, forged)
    assert bad.status_code == 403 and bad.json()["code"] == "bad_jwt"

    # Another app client of the same pool.
    other_client = idp.create_user_pool_client(UserPoolId=pool, ClientName="other",
                                               ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"])["UserPoolClient"]["ClientId"]
    other = idp.admin_initiate_auth(UserPoolId=pool, ClientId=other_client, AuthFlow="ADMIN_NO_SRP_AUTH",
                                    AuthParameters={"USERNAME": email.split("@")[0], "PASSWORD": "Passw0rd!x"})
    for kind in ("AccessToken", "IdToken"):
        r = _user(srv, other["AuthenticationResult"][kind])
        assert r.status_code == 403 and r.json()["code"] == "bad_jwt", kind

    # Another pool (moto signs every pool with the same key: only the issuer check refuses it).
    pool2, client2 = _pool(idp)
    toks2 = _tokens(idp, pool2, client2, unique_email("elsewhere"))
    r = _user(srv, toks2["IdToken"])
    assert r.status_code == 403 and r.json()["code"] == "bad_jwt"
    # RLS on rows owned by the original Supabase UUID keeps working with the Cognito token (REST).
    sql(srv, """create table if not exists public.cognito_notes (
                  id serial primary key, owner uuid not null default auth.uid(), body text);
                alter table public.cognito_notes enable row level security;
                drop policy if exists own on public.cognito_notes;
                create policy own on public.cognito_notes for all to authenticated
                  using (owner = auth.uid()) with check (owner = auth.uid());
                notify pgrst, 'reload schema';""")
    sql(srv, "insert into public.cognito_notes (owner, body) values ($1, 'migrated row'), ($2, 'not mine')",
        __import__("uuid").UUID(original.id), __import__("uuid").uuid4())
    sb = py_client(srv)
    sb.postgrest.auth(toks["AccessToken"])

    for _ in range(100):  # the schema cache reloads asynchronously after the NOTIFY
        try:
            rows = sb.table("cognito_notes").select("owner, body").execute().data
            break
        except APIError as exc:
            assert exc.code == "PGRST205", exc
            time.sleep(0.1)
    assert rows == [{"owner": original.id, "body": "migrated row"}]
    inserted = sb.table("cognito_notes").insert({"body": "new via cognito"}).execute().data
    assert inserted[0]["owner"] == original.id
    # supabase-js with the third-party `accessToken` option, unchanged app code.
    script = """
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
const sb = createClient(process.env.URL, process.env.ANON, {
  accessToken: async () => process.env.TOKEN, realtime: { transport: WebSocket } });
const { data, error } = await sb.from('cognito_notes').select('owner, body').order('id');
console.log(JSON.stringify({ data, error }));
"""

    js_dir = Path(__file__).resolve().parent.parent / "js"
    node = shutil.which("node")
    assert node, "node is required"
    out = subprocess.run([node, "--input-type=module", "-e", script], cwd=js_dir, capture_output=True, text=True,
                         env={**os.environ, "URL": srv.url, "ANON": srv.anon_key, "TOKEN": toks["IdToken"]},
                         timeout=60)
    assert out.stdout.strip(), out.stderr
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert reply["error"] is None, out.stderr
    assert [r["body"] for r in reply["data"]] == ["migrated row", "new via cognito"]
    # Ordinary ownbase tokens still work on a Cognito-enabled server.
    session = py_client(srv).auth.sign_in_with_password({"email": email, "password": "secret123"}).session
    assert _user(srv, session.access_token).json()["id"] == original.id


def test_export_cognito_csv(server: ServerHandle, tmp_path: Any) -> None:
    email = unique_email("export")
    adm = py_client(server, server.service_key).auth.admin
    user = adm.create_user({"email": email, "password": "secret123", "email_confirm": True,
                            "user_metadata": {"full_name": "Ex Port"}}).user
    out = tmp_path / "users.csv"
    env = {**os.environ, "OWNBASE_DATABASE_URL": server.db_url}
    subprocess.run([sys.executable, "-m", "ownbase", "auth", "export-cognito", "-o", str(out),
                    "--id-attribute", "custom:supabase_uid"], env=env, check=True, capture_output=True)
    rows = list(csv.DictReader(out.open()))
    header = out.read_text().splitlines()[0].split(",")
    assert header[:3] == ["name", "given_name", "family_name"] and header[-2:] == ["cognito:username",
                                                                                    "custom:supabase_uid"]
    mine = [r for r in rows if r["email"] == email]
    assert len(mine) == 1
    assert mine[0]["email_verified"] == "true" and mine[0]["cognito:username"] == email
    assert mine[0]["custom:supabase_uid"] == user.id and mine[0]["name"] == "Ex Port"
    assert "secret123" not in out.read_text() and "$2" not in out.read_text()

"""``migrate users``: auth.users and auth.identities with the same ids and hashes; optionally sessions.

Rows are copied in text COPY into a temporary table shaped like ownbase's table, then inserted with
``on conflict do nothing`` (rerunnable, never duplicates), in one transaction in which no user
trigger fires (an app's ``handle_new_user`` must not create profiles a second time). The columns
GoTrue needs as '' rather than NULL are coalesced on the way (REFERENCE-AUTH.md section 11a).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ownbase.db.sql import quote_ident
from ownbase.migrate import catalog, pipe, progress
from ownbase.migrate.conn import connect, qliteral, quiet_triggers, restore_triggers
from ownbase.migrate.progress import StepError
from ownbase.settings import Settings

NIL_UUID = "00000000-0000-0000-0000-000000000000"
USER_DEFAULTS = {
    **{c: "''" for c in ("confirmation_token", "recovery_token", "email_change_token_new", "email_change",
                         "email_change_token_current", "phone_change", "phone_change_token",
                         "reauthentication_token")},
    "instance_id": f"'{NIL_UUID}'::uuid", "aud": "'authenticated'", "role": "'authenticated'",
    "email_change_confirm_status": "0", "is_sso_user": "false", "is_anonymous": "false",
}
BASE_TABLES = ("users", "identities")
SESSION_TABLES = ("sessions", "refresh_tokens", "mfa_amr_claims")


async def run(source_url: str, target_url: str, sessions: bool, jwt_secret: str | None,
              settings: Settings, replace: bool = False, trust_jwks: str | None = None,
              snapshot: str | None = None) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url)
    names = BASE_TABLES + (SESSION_TABLES if sessions else ())
    try:
        if not await catalog.relation_exists(src, "auth", "users"):
            raise StepError("the source has no auth.users table")
        await progress.ensure(tgt)
        out: dict[str, Any] = {"tables": {}, "notes": []}
        async with tgt.transaction():
            targets = [f"auth.{n}" for n in names]
            method = await quiet_triggers(tgt, targets)
            for name in names:
                if await catalog.relation_exists(src, "auth", name):
                    out["tables"][f"auth.{name}"] = await _copy(src, tgt, name, replace, snapshot)
            if sessions:
                await tgt.execute(
                    "select setval(pg_get_serial_sequence('auth.refresh_tokens', 'id'),"
                    " greatest((select max(id) from auth.refresh_tokens), 1))")
            await restore_triggers(tgt, method, targets)
            await progress.mark(tgt, "users", "copied", {"tables": out["tables"], "sessions": sessions})
        out["triggers"] = method
        out["password_hashes"] = {r["kind"]: r["n"] for r in await tgt.fetch(
            """select case when coalesce(encrypted_password, '') = '' then 'none'
                           when encrypted_password like '$2%' then 'bcrypt'
                           when encrypted_password like '$argon2i%' then 'argon2'
                           when encrypted_password like '$fbscrypt$%' then 'firebase-scrypt'
                           else 'unsupported' end as kind, count(*) as n from auth.users group by 1""")}
        if out["password_hashes"].get("unsupported"):
            out["notes"].append(f"{out['password_hashes']['unsupported']} users have a hash ownbase cannot verify;"
                                " they sign in after a password reset")
        skipped = [k for k, v in out["tables"].items() if v["copied"] + v["present"] < v["source"]]
        for k in skipped:
            out["notes"].append(f"{k}: some rows conflict with different rows already on the target (same email?)")
        out["jwt_secret"] = _jwt_note(jwt_secret, settings, out["notes"])
        if trust_jwks:
            out["trusted_jwks"] = await _trust_jwks(trust_jwks, settings, out["notes"])
        out["ok"] = not skipped
        return out
    finally:
        await src.close()
        await tgt.close()


async def common_columns(src: asyncpg.Connection, tgt: asyncpg.Connection, name: str) -> list[str]:
    """Columns of auth.<name> both sides have (the target's non-generated ones)."""
    target_cols = [c for c, gen in (await catalog.column_names(tgt, "auth", name)).items() if not gen]
    source_cols = await catalog.column_names(src, "auth", name)
    return [c for c in target_cols if c in source_cols]


async def _copy(src: asyncpg.Connection, tgt: asyncpg.Connection, name: str, replace: bool,
                snapshot: str | None = None) -> dict[str, int]:
    cols = await common_columns(src, tgt, name)
    exprs = []
    for c in cols:
        if name == "users" and c in USER_DEFAULTS:
            exprs.append(f"coalesce({quote_ident(c)}, {USER_DEFAULTS[c]})")
        else:
            exprs.append(quote_ident(c))
    col_sql = ", ".join(quote_ident(c) for c in cols)
    temp = f"migrate_{name}"
    await tgt.execute(f"create temp table {temp} on commit drop as select {col_sql} from auth.{name} with no data")
    join = (lambda: src.execute(f"set transaction snapshot {qliteral(snapshot)}")) if snapshot else None
    source_rows = await pipe.stream(src, f"select {', '.join(exprs)} from auth.{name}", tgt, temp, cols, "text",
                                    before=join)
    key = "id"
    present = int(await tgt.fetchval(
        f"select count(*) from {temp} m where exists (select 1 from auth.{name} t where t.{key} = m.{key})"))
    conflict = "on conflict do nothing"
    if replace:  # the way back: rows gone from the source go, changed rows are updated
        await tgt.execute(f"delete from auth.{name} t where not exists (select 1 from {temp} m where m.id = t.id)")
        updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in cols if c != "id")
        conflict = f"on conflict (id) do update set {updates}"
    inserted = await tgt.execute(f"insert into auth.{name} ({col_sql}) select {col_sql} from {temp} {conflict}")
    return {"source": source_rows, "copied": int(inserted.split()[-1]), "present": present}


async def _trust_jwks(url: str, settings: Settings, notes: list[str]) -> dict[str, Any]:
    """Save the project's public signing keys for OWNBASE_JWT_TRUSTED_JWKS (Supabase never exports
    the private halves, so tokens it signed can only be verified, until they expire)."""
    import json
    from pathlib import Path

    import httpx

    from ownbase.keys import trusted_keys

    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.get(url)
    if resp.status_code != 200:
        raise StepError(f"{url} answered {resp.status_code}")
    try:
        keys = [k for k in resp.json().get("keys", []) if k.get("kty") in ("RSA", "EC", "OKP") and "d" not in k]
        text = json.dumps({"keys": keys}, indent=2)
        usable = trusted_keys(text)
    except (ValueError, AttributeError) as exc:
        raise StepError(f"{url} is not a JWKS: {exc}") from None
    path = Path(settings.data_dir).resolve() / "keys" / "trusted-jwks.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    if settings.jwt_trusted_jwks.strip() != str(path):
        notes.append(f"set OWNBASE_JWT_TRUSTED_JWKS={path} in the target's environment and restart: tokens"
                     " signed by the project's asymmetric keys are then accepted until they expire")
    return {"file": str(path), "keys": [k.kid for k in usable]}


def _jwt_note(secret: str | None, settings: Settings, notes: list[str]) -> str:
    if not secret:
        return "not given"
    if settings.jwt_secret == secret:
        return "accepted (OWNBASE_JWT_SECRET holds it)"
    notes.append("to keep access tokens the project already issued valid until they expire, set"
                 " OWNBASE_JWT_SECRET to the project's JWT secret in the target's environment and restart;"
                 " ownbase keeps signing with its own key and verifies HS256 tokens with that secret")
    return "set OWNBASE_JWT_SECRET"

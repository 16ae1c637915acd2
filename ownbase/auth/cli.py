"""`ownbase auth export-cognito`: write auth.users as the CSV a Cognito user import job takes.

Cognito cannot import password hashes: imported users get status RESET_REQUIRED and set a new
password on first sign-in (or use a migration Lambda trigger instead) — see docs/auth.md.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import typer

from ownbase import cli

# The columns GetCSVHeader returns for a pool with the standard attributes, in order.
COGNITO_HEADER = [
    "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile",
    "picture", "website", "email", "email_verified", "gender", "birthdate", "zoneinfo", "locale",
    "phone_number", "phone_number_verified", "address", "updated_at", "cognito:mfa_enabled",
    "cognito:username",
]


def row_for(user: dict[str, Any], username: str, id_attribute: str | None) -> dict[str, str] | None:
    email = (user.get("email") or "").strip().lower()
    phone = (user.get("phone") or "").strip()
    if user.get("is_anonymous") or (not email and not phone):
        return None  # nothing Cognito could sign in with
    meta = user.get("raw_user_meta_data") or {}
    if not isinstance(meta, dict):
        meta = {}
    updated: datetime | None = user.get("updated_at") or user.get("created_at")
    row = {key: "" for key in COGNITO_HEADER}
    row.update({
        "name": str(meta.get("full_name") or meta.get("name") or ""),
        "email": email,
        "email_verified": "true" if user.get("email_confirmed_at") else "false",
        "phone_number": ("+" + phone.lstrip("+")) if phone else "",
        "phone_number_verified": "true" if user.get("phone_confirmed_at") else "false",
        "updated_at": str(int(updated.timestamp())) if updated else "",
        "cognito:mfa_enabled": "false",
        "cognito:username": email if username == "email" and email else str(user["id"]),
    })
    if id_attribute:
        row[id_attribute] = str(user["id"])
    return row


_USERS_SQL = """
select id, email, phone, email_confirmed_at, phone_confirmed_at, raw_user_meta_data::text as meta,
       is_anonymous, created_at, updated_at
from auth.users where deleted_at is null order by created_at
"""


async def fetch_users(target: cli.Target) -> list[dict[str, Any]]:
    async with cli.connection(target) as conn:
        rows = await conn.fetch(_USERS_SQL)
    out = []
    for r in rows:
        d = dict(r)
        d["raw_user_meta_data"] = json.loads(d.pop("meta") or "{}")
        out.append(d)
    return out


def register(app: typer.Typer) -> None:
    auth_app = cli.group("auth", "Auth tools.")

    @auth_app.command("export-cognito")
    def export_cognito(
        output: Path = typer.Option(Path("cognito-users.csv"), "--output", "-o", help="CSV file ('-' = stdout)."),
        username: str = typer.Option("email", "--username",
                                     help="cognito:username from 'email' (pools with email as username) or 'id'."),
        id_attribute: Optional[str] = typer.Option(
            None, "--id-attribute",
            help="Also write the Supabase user id into this custom attribute (e.g. custom:supabase_uid)."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="ownbase data directory."),
        db_url: Optional[str] = typer.Option(None, help="PostgreSQL URL (default OWNBASE_DATABASE_URL)."),
    ) -> None:
        """Write users as a Cognito user-import CSV (no passwords: Cognito cannot import hashes)."""
        if username not in ("email", "id"):
            raise typer.BadParameter("--username must be 'email' or 'id'")
        if id_attribute and not id_attribute.startswith("custom:"):
            raise typer.BadParameter("--id-attribute must be a custom attribute (custom:...)")
        with cli.database(cli.settings(data_dir=data_dir), db_url) as target:
            users = cli.run(fetch_users(target))
        header = COGNITO_HEADER + ([id_attribute] if id_attribute else [])
        rows = [r for u in users if (r := row_for(u, username, id_attribute)) is not None]
        handle = sys.stdout if str(output) == "-" else open(output, "w", newline="", encoding="utf-8")
        try:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        finally:
            if handle is not sys.stdout:
                handle.close()
        if str(output) != "-":
            sys.stderr.write(f"wrote {len(rows)} users to {output} (skipped {len(users) - len(rows)}); "
                             "passwords are not exported: imported users must reset them.\n")

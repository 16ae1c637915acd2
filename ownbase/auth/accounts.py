"""Which user a provider identity belongs to (GoTrue's account-linking procedure), and linking an
identity to a signed-in user.

1. An identity with the provider's subject exists (signed in before, or copied from Supabase by
   ``ownbase migrate users``): that user, its identity data refreshed.
2. Else the provider's verified emails (all of them with autoconfirm) are matched against users and
   identities: one user -> the identity is linked to it; several -> GoTrue's 500; none -> a new user.
3. An unconfirmed user with an unverified provider email is kept but refused sign-in.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ownbase.auth import errors, otp, users
from ownbase.auth.profiles import Profile
from ownbase.auth.rules import banned
from ownbase.context import Context


async def recompute_providers(conn: asyncpg.Connection, user_id: Any) -> None:
    """``app_metadata.provider`` = the oldest identity's provider; ``providers`` in identity order."""
    await conn.execute(
        """update auth.users u set raw_app_meta_data = coalesce(u.raw_app_meta_data, '{}'::jsonb)
               || jsonb_build_object('provider', p.first, 'providers', p.list), updated_at = now()
           from (select (array_agg(provider order by created_at, id))[1] as first,
                        (select jsonb_agg(provider order by first_at) from (
                            select provider, min(created_at) as first_at from auth.identities
                            where user_id = $1 group by provider) d) as list
                 from auth.identities where user_id = $1) p
           where u.id = $1 and p.first is not null""", user_id)


async def _insert_identity(conn: asyncpg.Connection, user_id: Any, profile: Profile) -> None:
    await conn.execute(
        """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
               created_at, updated_at)
           values ($1, $2, $3::jsonb, $4, now(), now(), now())""",
        profile.sub, user_id, profile.data, profile.provider)


async def _merge_metadata(conn: asyncpg.Connection, user_id: Any, data: dict[str, Any]) -> None:
    await users.merge_metadata(conn, user_id, "raw_user_meta_data", data)


def needs_verification(provider: str) -> errors.AuthError:
    return errors.AuthError(422, "provider_email_needs_verification",
                            f"Unverified email with {provider}. Verify the email with {provider} in order to sign in")


async def _create(conn: asyncpg.Connection, ctx: Context, profile: Profile) -> asyncpg.Record:
    if ctx.settings.auth_disable_signup:
        raise errors.signup_disabled()
    primary = profile.primary_email
    email = primary.address if primary else None
    if email and await users.by_email(conn, email) is not None:
        email = None  # the address belongs to someone else: GoTrue creates the user without one
    confirmed = bool(email and primary and (primary.verified or ctx.settings.auth_autoconfirm))
    row = await conn.fetchrow(
        """insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
               raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
               confirmation_token, recovery_token, email_change_token_new, email_change, is_anonymous)
           values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, '',
                   case when $3 then now() end, $4::jsonb, $5::jsonb, false, now(), now(), '', '', '', '', false)
           returning *""",
        uuid.uuid4(), email, confirmed, {"provider": profile.provider, "providers": [profile.provider]},
        profile.data)
    assert row is not None
    await _insert_identity(conn, row["id"], profile)
    return row


async def sign_in(conn: asyncpg.Connection, ctx: Context, profile: Profile) -> tuple[asyncpg.Record, bool]:
    """The user ``profile`` signs in as (created or linked as needed) and whether it is new.

    Raises GoTrue's errors; ``provider_email_needs_verification`` is raised only after the caller
    commits (see :func:`check_verified`)."""
    created = False
    identity = await conn.fetchrow(
        "select * from auth.identities where provider_id = $1 and provider = $2 for update",
        profile.sub, profile.provider)
    if identity is not None:
        await conn.execute(
            "update auth.identities set identity_data = $2::jsonb, last_sign_in_at = now(), updated_at = now()"
            " where id = $1", identity["id"], profile.data)
        user_id = identity["user_id"]
        await _merge_metadata(conn, user_id, profile.data)
    else:
        emails = [e.address for e in profile.emails if e.verified or ctx.settings.auth_autoconfirm]
        found: list[Any] = []
        if emails:
            found = [r["id"] for r in await conn.fetch(
                """select user_id as id from auth.identities where email = any($1::text[])
                   union select id from auth.users where lower(email) = any($1::text[]) and not is_sso_user""",
                emails)]
        if len(found) > 1:
            raise errors.AuthError(500, "unexpected_failure", "Multiple accounts with the same email address"
                                   " in the same linking domain detected: default")
        if found:
            user_id = found[0]
            await _insert_identity(conn, user_id, profile)
            await _merge_metadata(conn, user_id, profile.data)
        else:
            user_id = (await _create(conn, ctx, profile))["id"]
            created = True
    await recompute_providers(conn, user_id)
    user = await users.by_id(conn, str(user_id), lock=True)
    assert user is not None
    if banned(user):
        raise errors.AuthError(403, "user_banned", "User is banned")
    primary = profile.primary_email
    if user["email_confirmed_at"] is None and primary is not None and (primary.verified or ctx.settings.auth_autoconfirm):
        # The provider proves the address; whoever made this unconfirmed account did not (it may
        # be a squatter who signed up with the owner's address): drop their identities, password
        # and metadata before confirming, as GoTrue does.
        await conn.execute("delete from auth.identities where user_id = $1 and not (provider = $2 and provider_id = $3)",
                           user["id"], profile.provider, profile.sub)
        taken = await users.by_email(conn, primary.address)
        email = primary.address if taken is None or taken["id"] == user["id"] else user["email"]
        await conn.execute(
            """update auth.users set encrypted_password = '', raw_user_meta_data = $2::jsonb, email = $3,
                   email_confirmed_at = now(), confirmation_token = '', updated_at = now() where id = $1""",
            user["id"], profile.data, email)
        await recompute_providers(conn, user_id)
        user = await users.by_id(conn, str(user_id))
        assert user is not None
    return user, created


async def refuse_unverified(conn: asyncpg.Connection, ctx: Context, user: asyncpg.Record, profile: Profile,
                            redirect_to: str | None) -> errors.AuthError | None:
    """GoTrue keeps a user whose provider email is unverified but refuses the sign-in, mailing a
    confirmation when it can (the link confirms the address; the next sign-in then works)."""
    if user["email_confirmed_at"] is not None or profile.primary_email is None:
        return None
    p = profile.provider
    if user["email"]:
        try:
            async with conn.transaction():  # a savepoint: a refused mail leaves the user in place
                await otp.send(conn, ctx, user, "confirmation", redirect_to=redirect_to)
        except errors.AuthError:
            pass  # over the mail budget, or the mail failed: say so without the mail
        else:
            return errors.AuthError(422, "provider_email_needs_verification",
                                    f"Unverified email with {p}. A confirmation email has been sent to your {p} email")
    return needs_verification(p)


async def link(conn: asyncpg.Connection, ctx: Context, target: asyncpg.Record, profile: Profile) -> asyncpg.Record:
    """Attach ``profile``'s identity to ``target`` (linkIdentity / id_token with link_identity)."""
    identity = await conn.fetchrow(
        "select * from auth.identities where provider_id = $1 and provider = $2", profile.sub, profile.provider)
    if identity is not None:
        if identity["user_id"] == target["id"]:
            raise errors.AuthError(422, "identity_already_exists", "Identity is already linked")
        raise errors.AuthError(422, "identity_already_exists", "Identity is already linked to another user")
    await _insert_identity(conn, target["id"], profile)
    primary = profile.primary_email
    if not target["email"] and primary is not None:
        if await users.by_email(conn, primary.address) is not None:
            raise errors.AuthError(400, "email_exists",
                                     "A user with this email address has already been registered")
        if not (primary.verified or ctx.settings.auth_autoconfirm):
            raise errors.AuthError(422, "email_not_confirmed", f"Unverified email with {profile.provider}."
                                   f" Verify the email with {profile.provider} in order to sign in")
        await conn.execute(
            "update auth.users set email = $2, email_confirmed_at = coalesce(email_confirmed_at, now()),"
            " is_anonymous = false, updated_at = now() where id = $1", target["id"], primary.address)
    await recompute_providers(conn, target["id"])
    fresh = await users.by_id(conn, str(target["id"]))
    assert fresh is not None
    return fresh


async def unlink(conn: asyncpg.Connection, user: asyncpg.Record, identity_id: uuid.UUID) -> None:
    """DELETE /user/identities/{id} (GoTrue's checks in its order)."""
    rows = await users.identities(conn, user["id"])
    if len(rows) <= 1:
        raise errors.AuthError(422, "single_identity_not_deletable", "User must have at least 1 identity after unlinking")
    gone = next((r for r in rows if r["id"] == identity_id), None)
    if gone is None:
        raise errors.AuthError(422, "identity_not_found", "Identity doesn't exist")
    rest = [r for r in rows if r["id"] != identity_id]
    await conn.execute("delete from auth.identities where id = $1", identity_id)
    if gone["provider"] == "phone":
        await conn.execute("update auth.users set phone = null, phone_confirmed_at = null, updated_at = now()"
                           " where id = $1", user["id"])
    else:
        email = (user["email"] or "").lower()
        if not any(r["email"] == email for r in rest if email):
            verified = [r["email"] for r in rest if r["email"] and users._obj(r["identity_data"]).get("email_verified")]
            others = [r["email"] for r in rest if r["email"]]
            email = (verified or others or [None])[0]
            if email:
                taken = await users.by_email(conn, email)
                if taken is not None and taken["id"] != user["id"]:
                    raise errors.AuthError(422, "email_conflict_identity_not_deletable",
                                           "Unable to unlink identity due to email conflict")
            await conn.execute("update auth.users set email = $2, updated_at = now() where id = $1", user["id"], email)
    await recompute_providers(conn, user["id"])

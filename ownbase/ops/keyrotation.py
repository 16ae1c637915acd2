"""`ownbase keys rotate`: one step of a signing-key rotation per run.

1. no next key: a new key is created as the *next* key. Processes publish it in JWKS when they
   (re)start, but keep signing with the current one, so verifiers that cache the JWKS learn it first.
2. a next key exists: it becomes the signing key; the old one is *retired*: kept in JWKS and for
   verification until its last access token expired (issued until now + OWNBASE_AUTH_ACCESS_TOKEN_TTL),
   then dropped (retired keys past that time are ignored and removed by the next run).

Keys kept in the data dir are rewritten in place (0600 files). With OWNBASE_JWT_PRIVATE_KEY (several
processes, Secrets Manager) nothing can be written: the step prints the settings to set instead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownbase.keys import (
    generate_private_key_pem,
    key_path,
    previous_path,
    published_key,
    retired_keys,
)
from ownbase.settings import Settings

GRACE_SECONDS = 60  # clock skew between processes and verifiers


@dataclass
class Step:
    action: str  # "next-created" | "promoted"
    kid: str  # the new (next or now signing) key's kid
    retired_kid: str | None = None
    retired_until: int | None = None
    settings: dict[str, str] = field(default_factory=dict)  # settings mode: what to set


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _retired_jwks(existing: str, pem: str, until: int) -> str:
    keys = [dict(k.public_jwk or {}, exp=int(k.not_after)) if k.not_after else dict(k.public_jwk or {})
            for k in retired_keys(existing)]  # expired ones are dropped here
    keys.append(dict(published_key(pem).public_jwk or {}, exp=until))
    return json.dumps({"keys": keys}, indent=2)


def rotate(settings: Settings, *, now: float | None = None) -> Step:
    if settings.jwt_algorithm == "HS256" and not settings.jwt_private_key:
        raise ValueError("HS256 secrets (OWNBASE_JWT_SECRET) cannot be rotated this way: use an "
                         "asymmetric signing key (OWNBASE_JWT_ALGORITHM=RS256 or ES256)")
    now = time.time() if now is None else now
    until = int(now) + settings.auth_access_token_ttl + GRACE_SECONDS
    if settings.jwt_private_key:
        return _rotate_settings(settings, until)
    current_path, next_path = key_path(settings), key_path(settings, "next")
    if not current_path.exists():
        raise ValueError(f"no signing key in {current_path.parent}: start ownbase once first")
    current = current_path.read_text()
    if not next_path.exists():
        pem = generate_private_key_pem(settings.jwt_algorithm)
        _write(next_path, pem)
        return Step("next-created", published_key(pem).kid or "")
    nxt = next_path.read_text()
    derive = key_path(settings, "derive")
    if not derive.exists() and not settings.jwt_derivation_key:
        _write(derive, current)  # derived secrets stay those of the first key
    prev = previous_path(settings)
    _write(prev, _retired_jwks(prev.read_text() if prev.exists() else "", current, until))
    _write(current_path, nxt)
    next_path.unlink()
    return Step("promoted", published_key(nxt).kid or "", published_key(current).kid, until)


def _rotate_settings(settings: Settings, until: int) -> Step:
    current = settings.jwt_private_key.replace("\\n", "\n")
    if not settings.jwt_next_private_key:
        pem = generate_private_key_pem(published_key(current).algorithm)  # the current key's type
        return Step("next-created", published_key(pem).kid or "",
                    settings={"OWNBASE_JWT_NEXT_PRIVATE_KEY": pem})
    nxt = settings.jwt_next_private_key.replace("\\n", "\n")
    previous = settings.jwt_previous_public_keys
    if previous.strip() and not previous.lstrip().startswith("{"):
        previous = Path(previous).read_text()
    out = {"OWNBASE_JWT_PRIVATE_KEY": nxt, "OWNBASE_JWT_NEXT_PRIVATE_KEY": "",
           "OWNBASE_JWT_PREVIOUS_PUBLIC_KEYS": _retired_jwks(previous, current, until)}
    if not settings.jwt_derivation_key:
        out["OWNBASE_JWT_DERIVATION_KEY"] = current
    return Step("promoted", published_key(nxt).kid or "", published_key(current).kid, until, out)


def describe(step: Step, data_dir_mode: bool) -> str:
    where = "" if data_dir_mode else " once these settings are in place"
    if step.action == "next-created":
        return (f"Created the next signing key {step.kid}. Restart ownbase{where} (every process): it is "
                "published in JWKS but does not sign yet. Once verifiers have refreshed their JWKS "
                "cache, run `ownbase keys rotate` again to make it the signing key.")
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(step.retired_until or 0))
    return (f"Key {step.kid} signs from the next restart{where}; the old key {step.retired_kid} stays "
            f"in JWKS and verifies its tokens until {until}, then it is dropped. The anon and "
            "service-role keys are signed too: print the new ones with `ownbase keys` (the old ones "
            "work until then; sb_publishable_/sb_secret_ keys are not affected).")


def as_json(step: Step) -> dict[str, Any]:
    return {"action": step.action, "kid": step.kid, "retired_kid": step.retired_kid,
            "retired_until": step.retired_until, "settings": step.settings}

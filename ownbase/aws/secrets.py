"""Compose OWNBASE_* URLs from the pieces AWS hands a process.

ECS injects a Secrets Manager secret as one environment variable, and RDS keeps its credentials
as JSON ({"username", "password", "host", "port", "dbname"}). ownbase wants one URL, so the
entry points build ``OWNBASE_DATABASE_URL`` (and the read replica's) here; the password never
appears in the task definition, only in the secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from urllib.parse import quote

DATABASE_SECRET = "OWNBASE_DATABASE_SECRET"  # the RDS secret's JSON (ECS secret / Lambda fetch)
DATABASE_READ_HOST = "OWNBASE_DATABASE_READ_HOST"  # read replica endpoint (same credentials)
REDIS_AUTH_TOKEN = "OWNBASE_REDIS_AUTH_TOKEN"  # ElastiCache AUTH token (secret)
REDIS_HOST = "OWNBASE_REDIS_HOST"  # ElastiCache primary endpoint (plain: not a secret)
REDIS_PORT = "OWNBASE_REDIS_PORT"
SECRET_ARNS = "OWNBASE_AWS_SECRET_ARNS"  # Lambda: JSON {"OWNBASE_X": "arn:...[:json-key]"}


class SecretFormatError(ValueError):
    """The injected secret is not what RDS/ElastiCache writes."""


def postgres_url(secret_json: str, host: str | None = None) -> str:
    try:
        data = json.loads(secret_json)
        user, password = str(data["username"]), str(data["password"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SecretFormatError(f"{DATABASE_SECRET} is not an RDS credentials secret: {exc}") from None
    host = host or str(data.get("host", ""))
    if not host:
        raise SecretFormatError(f"{DATABASE_SECRET} has no host")
    port = int(data.get("port") or 5432)
    dbname = str(data.get("dbname") or "postgres")
    # RDS enforces TLS (rds.force_ssl=1); verify-full checks the certificate against
    # OWNBASE_DB_SSL_ROOT_CERT (the RDS global bundle baked into the image).
    return (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
            f"{quote(dbname, safe='')}?sslmode=verify-full")


def redis_url(token: str, host: str, port: str | None) -> str:
    # ElastiCache with in-transit encryption speaks TLS only: rediss://
    return f"rediss://:{quote(token, safe='')}@{host}:{int(port or 6379)}/0"


def compose(env: MutableMapping[str, str]) -> None:
    """Fill OWNBASE_DATABASE_URL / _READ_URL / OWNBASE_REDIS_URL from secret parts, if unset."""
    secret = env.get(DATABASE_SECRET)
    if secret and not env.get("OWNBASE_DATABASE_URL"):
        env["OWNBASE_DATABASE_URL"] = postgres_url(secret)
    read_host = env.get(DATABASE_READ_HOST)
    if secret and read_host and not env.get("OWNBASE_DATABASE_READ_URL"):
        env["OWNBASE_DATABASE_READ_URL"] = postgres_url(secret, host=read_host)
    token, host = env.get(REDIS_AUTH_TOKEN), env.get(REDIS_HOST)
    if host and not env.get("OWNBASE_REDIS_URL"):
        env["OWNBASE_REDIS_URL"] = (redis_url(token, host, env.get(REDIS_PORT)) if token
                                    else f"rediss://{host}:{int(env.get(REDIS_PORT) or 6379)}/0")


def fetch_secrets(env: MutableMapping[str, str], client: object | None = None) -> None:
    """Lambda has no ECS secrets: read the ARNs named in OWNBASE_AWS_SECRET_ARNS at cold start.

    A value "arn:...:secret:name:json-key" takes one field of a JSON secret, as ECS does.
    """
    raw = env.get(SECRET_ARNS)
    if not raw:
        return
    wanted: Mapping[str, str] = json.loads(raw)
    if client is None:
        import botocore.session

        client = botocore.session.get_session().create_client("secretsmanager")
    for name, ref in wanted.items():
        if env.get(name):
            continue
        arn, key = _split_ref(ref)
        value = client.get_secret_value(SecretId=arn)["SecretString"]  # type: ignore[attr-defined]
        env[name] = str(json.loads(value)[key]) if key else value


def _split_ref(ref: str) -> tuple[str, str]:
    # arn:aws:secretsmanager:region:account:secret:name-AbCdEf[:json-key]
    parts = ref.split(":")
    if len(parts) > 7:
        return ":".join(parts[:7]), parts[7]
    return ref, ""

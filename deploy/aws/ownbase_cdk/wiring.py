"""What an ownbase process is told: plain OWNBASE_* values and the secrets it reads.

Shared by the Fargate service, the scheduled backup task and the Lambda function, so the three
cannot drift. Secrets are (secret, json-field) pairs: ECS injects them, Lambda fetches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ownbase_cdk.config import DeployConfig


@dataclass
class Parts:
    """The resources of the other stacks that an ownbase process uses."""

    config: DeployConfig
    vpc_cidr: str
    db_secret: secretsmanager.ISecret
    bucket_name: str
    bucket_arn: str
    kms_key_arn: str | None = None
    read_replica_host: str | None = None
    redis_host: str | None = None
    redis_port: str | None = None
    redis_secret: secretsmanager.ISecret | None = None
    mail_from: str = ""
    ses_resource_arns: list[str] = field(default_factory=list)
    cognito_pool_id: str | None = None
    cognito_client_id: str | None = None


def environment(parts: Parts, public_url: str) -> dict[str, str]:
    cfg = parts.config
    env: dict[str, str] = {
        "OWNBASE_PUBLIC_URL": public_url,
        "OWNBASE_SITE_URL": cfg.ownbase.site_url,
        "OWNBASE_TRUSTED_PROXIES": parts.vpc_cidr,  # the load balancer's nodes live in the VPC
        "OWNBASE_STORAGE_BACKEND": "s3",
        "OWNBASE_STORAGE_S3_BUCKET": parts.bucket_name,
        "OWNBASE_STORAGE_S3_REGION": cfg.region,
        "OWNBASE_STORAGE_S3_SSE": "aws:kms" if parts.kms_key_arn else "AES256",
        "OWNBASE_MAIL_BACKEND": "ses" if cfg.mail.enabled else "console",
        "OWNBASE_MAIL_SES_REGION": cfg.region,
    }
    if parts.kms_key_arn:
        env["OWNBASE_STORAGE_S3_KMS_KEY_ID"] = parts.kms_key_arn
    if parts.mail_from:
        env["OWNBASE_MAIL_FROM"] = parts.mail_from
    if parts.read_replica_host:
        env["OWNBASE_DATABASE_READ_HOST"] = parts.read_replica_host  # URL built by the entry point
    if parts.redis_host:
        env["OWNBASE_REDIS_HOST"] = parts.redis_host
        env["OWNBASE_REDIS_PORT"] = parts.redis_port or "6379"
    if parts.cognito_pool_id:
        env["OWNBASE_AUTH_COGNITO_USER_POOL_ID"] = parts.cognito_pool_id
        env["OWNBASE_AUTH_COGNITO_REGION"] = cfg.region
        env["OWNBASE_AUTH_COGNITO_CLIENT_IDS"] = parts.cognito_client_id or ""
    env.update(cfg.ownbase.environment)
    return env


def secrets(scope: Construct, parts: Parts) -> dict[str, tuple[secretsmanager.ISecret, str | None]]:
    cfg = parts.config
    out: dict[str, tuple[secretsmanager.ISecret, str | None]] = {
        "OWNBASE_DATABASE_SECRET": (parts.db_secret, None),
        "OWNBASE_JWT_PRIVATE_KEY": (
            secretsmanager.Secret.from_secret_name_v2(scope, "JwtKey", cfg.ownbase.jwt_secret_name), None),
    }
    if parts.redis_secret is not None:
        out["OWNBASE_REDIS_AUTH_TOKEN"] = (parts.redis_secret, None)
    for name, ref in cfg.ownbase.secrets.items():
        out[name] = imported_secret(scope, f"Extra{len(out)}", ref)
    return out


def imported_secret(scope: Construct, cid: str, ref: str) -> tuple[secretsmanager.ISecret, str | None]:
    """"arn:aws:secretsmanager:region:acct:secret:name-AbCdEf[:json-key]" -> (secret, key)."""
    parts = ref.split(":")
    arn, key = (":".join(parts[:7]), parts[7]) if len(parts) > 7 else (ref, None)
    return secretsmanager.Secret.from_secret_complete_arn(scope, cid, arn), key or None


def grant_app(role: iam.IGrantable, parts: Parts, bucket: s3.IBucket, key: kms.IKey | None) -> None:
    """Least privilege for the API process: its bucket, sending mail as its identity."""
    bucket.grant_read_write(role)
    if key is not None:
        key.grant_encrypt_decrypt(role)
    if parts.config.mail.enabled:
        role.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["ses:SendEmail"], resources=parts.ses_resource_arns))


def stack_json(scope: Construct, value: object) -> str:
    return Stack.of(scope).to_json_string(value)

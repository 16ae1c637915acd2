"""Every knob of the AWS deployment, typed, in one file (config.yaml; defaults documented here).

Load with ``load_config(path)``. Unknown keys are errors, so a typo fails ``cdk synth`` instead of
being silently ignored. The defaults are the "small" column of docs/costs.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkConfig(_Model):
    # "nat": one NAT gateway (per AZ if nat_per_az): tasks can call the internet (OAuth
    # providers, webhooks, external APIs). ~$33/month + $0.045/GB; the cheapest fixed cost.
    # "endpoints": no NAT and no internet egress at all; tasks reach S3, Secrets Manager, ECR,
    # CloudWatch Logs and SES through VPC endpoints: ~$7.30/month per endpoint per AZ (5 x 2 AZ
    # = ~$73) but $0.01/GB, so it pays with heavy AWS traffic or when no egress is a requirement.
    # Both get the free S3 gateway endpoint. Numbers: docs/costs.md.
    egress: Literal["endpoints", "nat"] = "nat"
    nat_per_az: bool = False
    cidr: str = "10.40.0.0/16"
    max_azs: int = Field(2, ge=2, le=3)
    # more interface endpoints by CDK name, e.g. ["LAMBDA"] when functions call AWS Lambda
    extra_interface_endpoints: list[str] = Field(default_factory=list)


class DatabaseConfig(_Model):
    postgres_major: int = Field(16, ge=16)  # RDS PostgreSQL major version
    # empty: the major version only, so RDS picks its default minor and upgrades minors itself
    # (a pinned minor would make a later deploy try to downgrade); e.g. "16.13" to pin one
    engine_version: str = Field("", pattern=r"^(\d+\.\d+)?$")

    @model_validator(mode="after")
    def _same_major(self) -> DatabaseConfig:
        if self.engine_version and self.engine_version.split(".")[0] != str(self.postgres_major):
            raise ValueError("database.engine_version must be a minor of database.postgres_major")
        return self
    instance_type: str = "t4g.micro"  # RDS class without the "db." prefix
    allocated_storage_gb: int = Field(20, ge=20)
    max_allocated_storage_gb: int = Field(100, ge=20)  # storage autoscaling ceiling
    multi_az: bool = False  # a standby in the second AZ (doubles the instance price)
    backup_retention_days: int = Field(7, ge=1, le=35)  # automated backups / point-in-time restore
    deletion_protection: bool = True
    read_replica: bool = False  # a replica wired to OWNBASE_DATABASE_READ_URL
    read_replica_instance_type: str = ""  # empty: same as instance_type
    database_name: str = "ownbase"
    admin_user: str = "ownbase_admin"
    max_connections: int = Field(0, ge=0)  # 0: RDS default for the class


class ServiceConfig(_Model):
    cpu: int = 512  # Fargate CPU units (512 = 0.5 vCPU)
    memory_mib: int = 1024
    architecture: Literal["arm64", "x86_64"] = "arm64"  # Graviton by default (~20% cheaper)
    desired_count: int = Field(1, ge=1)
    min_count: int = Field(1, ge=1)
    max_count: int = Field(1, ge=1)  # more than 1 needs cache.enabled (Redis)
    cpu_target_percent: int = Field(60, ge=10, le=95)  # autoscaling target
    requests_per_target: int = Field(1000, ge=0)  # per minute per task; 0 disables that policy
    spot: bool = False  # Fargate Spot beside one on-demand task (interruptions drop sockets)
    image_tag: str = "latest"  # tag pushed to the stack's ECR repository
    image_uri: str = ""  # use this image instead of the stack's ECR repository
    container_port: int = 8000
    idle_timeout_seconds: int = Field(3600, ge=1, le=4000)  # ALB idle timeout: long-lived websockets
    deregistration_delay_seconds: int = Field(60, ge=0, le=3600)  # lets in-flight requests finish
    stop_timeout_seconds: int = Field(90, ge=2, le=120)  # SIGTERM -> SIGKILL; ownbase drains in 20 s
    health_check_path: str = "/ready"
    certificate_arn: str = ""  # ACM certificate in the stack's region: HTTPS on 443, HTTP redirects
    domain_name: str = ""  # e.g. api.example.com (a CNAME/alias to the ALB); OWNBASE_PUBLIC_URL
    log_retention_days: int = 30
    container_insights: bool = False  # per-task metrics (costs extra CloudWatch metrics)
    waf: bool = False  # AWS managed rules + a per-IP rate rule on the ALB
    waf_rate_limit_per_5min: int = Field(2000, ge=100)


class LambdaConfig(_Model):
    # The HTTP APIs (auth, rest, storage reads, /db) on API Gateway HTTP API + Lambda. Realtime
    # and uploads stay on the Fargate service behind a CloudFront front door (see docs/aws/04-lambda.md).
    code_dir: str = "build/lambda"  # output of deploy/aws/build_lambda.sh
    memory_mib: int = Field(1024, ge=128, le=10240)
    timeout_seconds: int = Field(29, ge=1, le=29)  # API Gateway's integration limit is 29-30 s
    reserved_concurrency: int = Field(20, ge=1)  # caps database connections (x db_pool_max)
    db_pool_max: int = Field(2, ge=1)
    throttle_rate_per_second: int = Field(200, ge=1)
    throttle_burst: int = Field(400, ge=1)
    architecture: Literal["arm64", "x86_64"] = "arm64"
    cloudfront_web_acl_arn: str = ""  # optional WAF web ACL (us-east-1, scope CLOUDFRONT)


class StorageConfig(_Model):
    encryption: Literal["s3", "kms"] = "s3"  # SSE-S3, or a customer managed KMS key
    versioned: bool = True
    noncurrent_version_days: int = Field(30, ge=1)  # old versions kept this long
    abort_multipart_days: int = Field(7, ge=1)
    cors_origins: list[str] = Field(default_factory=list)  # browser origins; empty: the site_url
    bucket_name: str = ""  # empty: generated


class MailConfig(_Model):
    enabled: bool = True
    domain: str = ""  # SES identity (DKIM); empty: no identity created (verify one by hand)
    from_address: str = ""  # empty: noreply@<domain>
    mail_from_subdomain: str = "mail"  # custom MAIL FROM (SPF alignment); empty: SES's default
    bounce_topic_email: str = ""  # mailbox subscribed to bounces and complaints


class CacheConfig(_Model):
    enabled: bool = False  # needed for more than one task (rate limits, realtime fan-out)
    node_type: str = "cache.t4g.micro"
    replicas: int = Field(0, ge=0, le=5)  # read replicas; >0 enables automatic failover
    engine_version: str = "7.1"


class FrontendConfig(_Model):
    enabled: bool = False  # S3 + CloudFront for a single-page app
    domain_name: str = ""
    certificate_arn: str = ""  # must be an ACM certificate in us-east-1 (CloudFront's rule)
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"


class CognitoConfig(_Model):
    enabled: bool = False  # a user pool whose tokens ownbase accepts (OWNBASE_AUTH_COGNITO_*)
    self_sign_up: bool = True
    callback_urls: list[str] = Field(default_factory=list)


class AlarmsConfig(_Model):
    email: str = ""  # subscribed to every alarm (confirm the mail AWS sends)
    billing_threshold_usd: float = Field(50, ge=1)  # estimated charges of the month (us-east-1 metric)
    error_rate_percent: float = Field(5, gt=0, le=100)  # 5xx share of requests over 5 minutes
    latency_p95_seconds: float = Field(1.5, gt=0)
    db_cpu_percent: float = Field(80, gt=0, le=100)
    db_free_storage_gb: float = Field(2, gt=0)
    db_free_memory_mb: float = Field(64, gt=0)
    service_memory_percent: float = Field(85, gt=0, le=100)


class BackupConfig(_Model):
    enabled: bool = True  # a scheduled `ownbase backup` task writing to the backup bucket
    schedule: str = "cron(0 3 * * ? *)"  # EventBridge expression, UTC
    retention_days: int = Field(35, ge=1)


class ExtraContainer(_Model):
    """A container of the team's own, behind the same load balancer on its own paths."""

    name: str
    image: str
    port: int = 8080
    path_patterns: list[str]  # e.g. ["/api/v2/*"]
    priority: int = Field(ge=1, le=49000)  # listener rule priority, unique
    cpu: int = 256
    memory_mib: int = 512
    desired_count: int = 1
    health_check_path: str = "/"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    environment: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)  # ENV -> secret ARN[:json-key]


class OwnbaseSettings(_Model):
    """OWNBASE_* values the stack does not derive itself (never secrets: use ``secrets``)."""

    site_url: str = "http://localhost:3000"
    environment: dict[str, str] = Field(default_factory=dict)  # any other OWNBASE_* (plain)
    secrets: dict[str, str] = Field(default_factory=dict)  # OWNBASE_* -> secret ARN[:json-key]
    jwt_secret_name: str = "ownbase/jwt-private-key"  # Secrets Manager secret holding the PEM

    @field_validator("environment")
    @classmethod
    def _no_secrets_in_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if any(word in name.upper() for word in ("PASSWORD", "SECRET", "PRIVATE_KEY", "TOKEN")) or \
                    name.upper() in ("OWNBASE_DATABASE_URL", "OWNBASE_REDIS_URL", "OWNBASE_DATABASE_READ_URL"):
                raise ValueError(f"{name} holds a secret: put it under ownbase.secrets (a secret ARN)")
        return value


class DeployConfig(_Model):
    name: str = Field("ownbase", pattern=r"^[a-z][a-z0-9-]{1,30}$")  # prefix of every stack
    account: str = Field("000000000000", pattern=r"^\d{12}$")
    region: str = "us-east-1"
    api_mode: Literal["fargate", "lambda"] = "fargate"
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    lambda_api: LambdaConfig = Field(default_factory=LambdaConfig, alias="lambda")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    mail: MailConfig = Field(default_factory=MailConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    frontend: FrontendConfig = Field(default_factory=FrontendConfig)
    cognito: CognitoConfig = Field(default_factory=CognitoConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)
    ownbase: OwnbaseSettings = Field(default_factory=OwnbaseSettings)
    extra_containers: list[ExtraContainer] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> DeployConfig:
        if not self.service.min_count <= self.service.desired_count <= self.service.max_count:
            raise ValueError("service.desired_count must lie between service.min_count and service.max_count")
        if self.service.max_count > 1 and not self.cache.enabled:
            # ownbase refuses several processes without Redis (shared limits, fan-out, presence)
            raise ValueError("service.max_count > 1 needs cache.enabled: true (ElastiCache Redis)")
        priorities = [c.priority for c in self.extra_containers]
        if len(priorities) != len(set(priorities)):
            raise ValueError("extra_containers need unique priorities")
        return self


def load_config(path: str | Path | None) -> DeployConfig:
    if path is None:
        return DeployConfig()
    data = yaml.safe_load(Path(path).read_text()) or {}
    return DeployConfig.model_validate(data)

"""Assemble every stack from one DeployConfig (used by app.py and the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Tags

from ownbase_cdk import wiring
from ownbase_cdk.alarms import AlarmsStack, BillingStack
from ownbase_cdk.cache import CacheStack
from ownbase_cdk.cognito import CognitoStack
from ownbase_cdk.config import DeployConfig
from ownbase_cdk.database import DatabaseStack
from ownbase_cdk.frontend import FrontendStack
from ownbase_cdk.mail import MailStack
from ownbase_cdk.network import NetworkStack
from ownbase_cdk.registry import RegistryStack
from ownbase_cdk.service import ServiceStack
from ownbase_cdk.storage import StorageStack


@dataclass
class Stacks:
    network: NetworkStack
    registry: RegistryStack | None
    database: DatabaseStack
    storage: StorageStack
    service: ServiceStack
    alarms: AlarmsStack
    billing: BillingStack
    mail: MailStack | None = None
    cache: CacheStack | None = None
    cognito: CognitoStack | None = None
    frontend: FrontendStack | None = None


def build(app: cdk.App, config: DeployConfig, *, code_dir: Path | None = None) -> Stacks:
    # Explicit account/region: synth never looks anything up, so it works offline.
    env = cdk.Environment(account=config.account, region=config.region)
    billing_env = cdk.Environment(account=config.account, region="us-east-1")
    n = config.name
    # The VPC checks its AZ names against the region's list, which CDK would look up in the
    # account; the list is given here instead (the AZ names the network stack uses), so synth
    # never needs credentials. Same key as cdk.context.json would cache.
    zones = [f"{config.region}{s}" for s in "abc"[: config.network.max_azs]]
    app.node.set_context(f"availability-zones:account={config.account}:region={config.region}", zones)

    def stack_name(part: str) -> str:
        return f"{n}-{part}"

    network = NetworkStack(app, stack_name("network"), config=config, env=env)
    registry = None if config.service.image_uri else RegistryStack(app, stack_name("registry"), config=config, env=env)
    database = DatabaseStack(app, stack_name("database"), config=config, network=network, env=env)
    storage = StorageStack(app, stack_name("storage"), config=config, env=env)
    mail = MailStack(app, stack_name("mail"), config=config, env=env) if config.mail.enabled else None
    cache = CacheStack(app, stack_name("cache"), config=config, network=network, env=env) \
        if config.cache.enabled else None
    cognito = CognitoStack(app, stack_name("cognito"), config=config, env=env) if config.cognito.enabled else None
    frontend = FrontendStack(app, stack_name("frontend"), config=config, env=env) \
        if config.frontend.enabled else None
    parts = wiring.Parts(
        config=config,
        vpc_cidr=network.vpc.vpc_cidr_block,
        db_secret=database.secret,
        bucket_name=storage.bucket.bucket_name,
        bucket_arn=storage.bucket.bucket_arn,
        kms_key_arn=storage.key.key_arn if storage.key else None,
        read_replica_host=database.replica.db_instance_endpoint_address if database.replica else None,
        redis_host=cache.host if cache else None,
        redis_port=cache.port if cache else None,
        redis_secret=cache.auth_secret if cache else None,
        mail_from=mail.from_address if mail else "",
        ses_resource_arns=mail.identity_arns if mail else [],
        cognito_pool_id=cognito.pool.user_pool_id if cognito else None,
        cognito_client_id=cognito.client.user_pool_client_id if cognito else None,
    )
    service = ServiceStack(app, stack_name("service"), config=config, network=network, database=database,
                           storage=storage, parts=parts,
                           repository=registry.repository if registry else None, cache_sg=cache.security_group if cache else None,
                           code_dir=code_dir, env=env)
    alarms = AlarmsStack(app, stack_name("alarms"), config=config, service=service, database=database, env=env)
    billing = BillingStack(app, stack_name("billing"), config=config, env=billing_env)
    for key, value in {"project": n, **config.tags}.items():
        Tags.of(app).add(key, value)
    return Stacks(network=network, registry=registry, database=database, storage=storage, service=service, alarms=alarms,
                  billing=billing, mail=mail, cache=cache, cognito=cognito, frontend=frontend)

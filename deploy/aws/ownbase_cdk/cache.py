"""Optional ElastiCache Redis: TLS in transit, encrypted at rest, AUTH token from Secrets Manager."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ownbase_cdk.config import DeployConfig
from ownbase_cdk.network import NetworkStack


class CacheStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, network: NetworkStack,
                 **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        cache = config.cache
        # AUTH tokens: 16-128 printable characters without @, " or /.
        self.auth_secret = secretsmanager.Secret(
            self, "AuthToken", description="ownbase Redis AUTH token",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
        )
        self.security_group = ec2.SecurityGroup(self, "RedisSg", vpc=network.vpc, allow_all_outbound=False,
                                                description="ownbase Redis: only the app may connect")
        subnets = elasticache.CfnSubnetGroup(
            self, "Subnets", description="ownbase Redis",
            subnet_ids=network.vpc.select_subnets(subnet_group_name="data").subnet_ids,
        )
        self.group = elasticache.CfnReplicationGroup(
            self, "Redis",
            replication_group_description="ownbase rate limits, realtime fan-out and presence",
            engine="redis",
            engine_version=cache.engine_version,
            cache_node_type=cache.node_type,
            num_cache_clusters=1 + cache.replicas,
            automatic_failover_enabled=cache.replicas > 0,
            multi_az_enabled=cache.replicas > 0,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            auth_token=self.auth_secret.secret_value.unsafe_unwrap(),  # a {{resolve:...}} reference
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[self.security_group.security_group_id],
        )
        self.host = self.group.attr_primary_end_point_address
        self.port = self.group.attr_primary_end_point_port

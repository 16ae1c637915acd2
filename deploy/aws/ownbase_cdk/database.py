"""RDS PostgreSQL: encrypted, TLS-only, logical replication available, deletion-protected.

The master credentials are generated into Secrets Manager; tasks receive that secret's JSON
(OWNBASE_DATABASE_SECRET) and the entry point builds OWNBASE_DATABASE_URL from it.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from constructs import Construct

from ownbase_cdk.config import DeployConfig
from ownbase_cdk.network import NetworkStack


class DatabaseStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, network: NetworkStack,
                 **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        db = config.database
        major = str(db.postgres_major)
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(db.engine_version or major, major))
        parameters = {
            # Logical decoding for replication-based tools (zero-downtime moves with logical
            # replication, CDC); ownbase's realtime itself uses triggers and needs no slot.
            # Set at creation: changing it later needs a reboot.
            "rds.logical_replication": "1",
            "rds.force_ssl": "1",  # no plaintext connections
        }
        if db.max_connections:
            parameters["max_connections"] = str(db.max_connections)
        params = rds.ParameterGroup(self, "Params", engine=engine, parameters=parameters,
                                    description="ownbase: logical replication, TLS only")
        self.security_group = ec2.SecurityGroup(self, "DbSg", vpc=network.vpc, allow_all_outbound=False,
                                                description="ownbase database: only the app may connect")
        self.instance = rds.DatabaseInstance(
            self, "Postgres",
            engine=engine,
            instance_type=ec2.InstanceType(db.instance_type),
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.security_group],
            credentials=rds.Credentials.from_generated_secret(db.admin_user),
            database_name=db.database_name,
            parameter_group=params,
            allocated_storage=db.allocated_storage_gb,
            max_allocated_storage=db.max_allocated_storage_gb,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            multi_az=db.multi_az,
            backup_retention=Duration.days(db.backup_retention_days),
            deletion_protection=db.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            publicly_accessible=False,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=["postgresql"],
            copy_tags_to_snapshot=True,
        )
        assert self.instance.secret is not None
        self.secret = self.instance.secret
        self.replica: rds.DatabaseInstanceReadReplica | None = None
        if db.read_replica:
            self.replica = rds.DatabaseInstanceReadReplica(
                self, "ReadReplica",
                source_database_instance=self.instance,
                instance_type=ec2.InstanceType(db.read_replica_instance_type or db.instance_type),
                vpc=network.vpc,
                vpc_subnets=network.data_subnets,
                security_groups=[self.security_group],
                parameter_group=params,  # encryption is inherited from the source instance
                deletion_protection=db.deletion_protection,
                publicly_accessible=False,
                removal_policy=RemovalPolicy.DESTROY,  # a replica holds no data of its own
            )

    def allow_from(self, peer: ec2.ISecurityGroup, label: str) -> None:
        self.security_group.add_ingress_rule(peer, ec2.Port.tcp(5432), f"PostgreSQL from {label}")

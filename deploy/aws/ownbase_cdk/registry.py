"""The ECR repository, in its own stack: deployed (and an image pushed to it) before the service
stack, whose tasks would otherwise wait for an image that cannot exist yet."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from ownbase_cdk.config import DeployConfig


class RegistryStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        self.repository = ecr.Repository(
            self, "Images", repository_name=config.name, image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.MUTABLE,
            lifecycle_rules=[ecr.LifecycleRule(max_image_count=20)],
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
        )
        CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)

"""VPC over two AZs: public subnets (load balancer, NAT), private subnets for tasks and data.

Egress is a choice (config network.egress): one NAT gateway, or no internet at all with interface
endpoints for what ownbase calls. The S3 gateway endpoint (free) is there in both cases.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ownbase_cdk.config import DeployConfig

APP_SUBNETS = "app"
DATA_SUBNETS = "data"


class NetworkStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        net = config.network
        nat = net.egress == "nat"
        app_type = ec2.SubnetType.PRIVATE_WITH_EGRESS if nat else ec2.SubnetType.PRIVATE_ISOLATED
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(net.cidr),
            # Explicit AZ names (a, b): synth stays offline (app_builder gives CDK the same list).
            availability_zones=[f"{config.region}{s}" for s in "abc"[: net.max_azs]],
            nat_gateways=(net.max_azs if net.nat_per_az else 1) if nat else 0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name=APP_SUBNETS, subnet_type=app_type, cidr_mask=22),
                ec2.SubnetConfiguration(name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                        cidr_mask=24),
            ],
            restrict_default_security_group=True,
        )
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)
        # S3 traffic (storage, backups, ECR image layers) skips the NAT: gateway endpoints are free.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3,
                                      subnets=[self.app_subnets])
        if not nat:
            self._endpoints(config)

    def _endpoints(self, config: DeployConfig) -> None:
        services = {
            "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
            "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
            "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
        }
        if config.mail.enabled:
            services["Ses"] = ec2.InterfaceVpcEndpointAwsService.EMAIL  # SES API (ownbase's ses backend)
        if config.cognito.enabled:
            services["Cognito"] = ec2.InterfaceVpcEndpointAwsService.COGNITO_IDP
        for extra in config.network.extra_interface_endpoints:  # e.g. LAMBDA for functions
            services[extra.title().replace("_", "")] = getattr(ec2.InterfaceVpcEndpointAwsService, extra)
        for name, service in services.items():
            self.vpc.add_interface_endpoint(name, service=service, subnets=self.app_subnets,
                                            private_dns_enabled=True)

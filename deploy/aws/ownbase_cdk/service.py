"""ECS Fargate behind an Application Load Balancer: ownbase's container, the team's containers,
the scheduled backup task.

Websockets: the ALB idle timeout is long (realtime sockets heartbeat every 30 s anyway), and a
deploy drains: the target is deregistered (no new connections), in-flight requests get the
deregistration delay, then ECS sends SIGTERM and ownbase shuts down gracefully; realtime clients
reconnect to a new task on their own, as supabase-js does.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from ownbase_cdk import wiring
from ownbase_cdk.config import DeployConfig, ExtraContainer
from ownbase_cdk.database import DatabaseStack
from ownbase_cdk.lambda_api import LambdaApi
from ownbase_cdk.network import NetworkStack
from ownbase_cdk.storage import StorageStack

HEALTH_COMMAND = ["CMD", "python", "-m", "ownbase.aws.healthcheck"]


def _arch(name: str) -> ecs.CpuArchitecture:
    return ecs.CpuArchitecture.ARM64 if name == "arm64" else ecs.CpuArchitecture.X86_64


class ServiceStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, network: NetworkStack,
                 database: DatabaseStack, storage: StorageStack, parts: wiring.Parts,
                 repository: ecr.IRepository | None = None, cache_sg: ec2.ISecurityGroup | None = None, code_dir: Path | None = None,
                 **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        svc = config.service
        vpc = network.vpc
        self.config = config
        if svc.image_uri or repository is None:
            image = ecs.ContainerImage.from_registry(svc.image_uri)
        else:
            image = ecs.ContainerImage.from_ecr_repository(repository, svc.image_tag)
        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc, cluster_name=config.name,
                                   enable_fargate_capacity_providers=True,
                                   container_insights_v2=(ecs.ContainerInsights.ENABLED if svc.container_insights
                                                          else ecs.ContainerInsights.DISABLED))

        # --- load balancer ------------------------------------------------------------------
        self.alb_sg = ec2.SecurityGroup(self, "AlbSg", vpc=vpc, description="ownbase load balancer",
                                        allow_all_outbound=False)
        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb", vpc=vpc, internet_facing=True, security_group=self.alb_sg,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            idle_timeout=Duration.seconds(svc.idle_timeout_seconds),
            drop_invalid_header_fields=True,
        )
        if svc.certificate_arn:
            cert = acm.Certificate.from_certificate_arn(self, "Cert", svc.certificate_arn)
            self.listener = self.alb.add_listener("Https", port=443, certificates=[cert],
                                                  ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, open=True)
            self.alb.add_redirect(source_port=80, target_port=443)
            scheme = "https"
        else:
            self.listener = self.alb.add_listener("Http", port=80, open=True)
            scheme = "http"
        host = svc.domain_name or self.alb.load_balancer_dns_name
        self.url = f"{scheme}://{host}"
        self.lambda_api: LambdaApi | None = None
        if config.api_mode == "lambda":
            # One public URL (CloudFront) in front of the HTTP API and, for realtime and storage, the ALB.
            self.lambda_api = LambdaApi(self, "LambdaApi", config=config, vpc=vpc, alb=self.alb,
                                        alb_https=bool(svc.certificate_arn and svc.domain_name),
                                        code_dir=code_dir or Path(config.lambda_api.code_dir))
            self.url = self.lambda_api.url
        CfnOutput(self, "ApiUrl", value=self.url)
        CfnOutput(self, "LoadBalancerDns", value=self.alb.load_balancer_dns_name)

        # --- ownbase task -------------------------------------------------------------------
        self.log_group = logs.LogGroup(self, "Logs", retention=_retention(svc.log_retention_days))
        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task", family=f"{config.name}-api", cpu=svc.cpu, memory_limit_mib=svc.memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=_arch(svc.architecture),
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX),
        )
        env = wiring.environment(parts, self.url)
        env["OWNBASE_PORT"] = str(svc.container_port)
        self.secret_refs = wiring.secrets(self, parts)
        ecs_secrets = {name: ecs.Secret.from_secrets_manager(secret, key) if key
                       else ecs.Secret.from_secrets_manager(secret)
                       for name, (secret, key) in self.secret_refs.items()}
        self.container = self.task_definition.add_container(
            "ownbase", image=image, environment=env, secrets=ecs_secrets,
            port_mappings=[ecs.PortMapping(container_port=svc.container_port)],
            logging=ecs.LogDrivers.aws_logs(stream_prefix="ownbase", log_group=self.log_group),
            stop_timeout=Duration.seconds(svc.stop_timeout_seconds),
            health_check=ecs.HealthCheck(command=HEALTH_COMMAND, interval=Duration.seconds(30),
                                         timeout=Duration.seconds(5), retries=3,
                                         start_period=Duration.seconds(60)),
        )
        wiring.grant_app(self.task_definition.task_role, parts, storage.bucket, storage.key)
        if self.lambda_api is not None:
            self.lambda_api.configure(parts, env, self.secret_refs, storage.bucket, storage.key)
            allow(self, "DbFromLambda", database.security_group, self.lambda_api.security_group, 5432,
                  "PostgreSQL from the ownbase Lambda")
            if cache_sg is not None:
                allow(self, "RedisFromLambda", cache_sg, self.lambda_api.security_group, 6379,
                      "Redis from the ownbase Lambda")

        self.service_sg = ec2.SecurityGroup(self, "ServiceSg", vpc=vpc, description="ownbase tasks")
        self.service_sg.add_ingress_rule(self.alb_sg, ec2.Port.tcp(svc.container_port), "from the load balancer")
        self.alb_sg.add_egress_rule(self.service_sg, ec2.Port.tcp(svc.container_port), "to the tasks")
        allow(self, "DbFromTasks", database.security_group, self.service_sg, 5432, "PostgreSQL from ownbase tasks")
        if cache_sg is not None:
            allow(self, "RedisFromTasks", cache_sg, self.service_sg, 6379, "Redis from ownbase tasks")
        self.service = ecs.FargateService(
            self, "Service", cluster=self.cluster, task_definition=self.task_definition,
            desired_count=svc.desired_count, security_groups=[self.service_sg],
            vpc_subnets=network.app_subnets, assign_public_ip=False,
            min_healthy_percent=100, max_healthy_percent=200,  # rolling: new tasks before old ones stop
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            health_check_grace_period=Duration.seconds(120),
            capacity_provider_strategies=_capacity(svc.spot),
        )
        self.target_group = self.listener.add_targets(
            "ownbase", port=svc.container_port, protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            deregistration_delay=Duration.seconds(svc.deregistration_delay_seconds),
            health_check=elbv2.HealthCheck(path=svc.health_check_path, healthy_http_codes="200",
                                           interval=Duration.seconds(15), timeout=Duration.seconds(5),
                                           healthy_threshold_count=2, unhealthy_threshold_count=3),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=svc.min_count, max_capacity=svc.max_count)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=svc.cpu_target_percent,
                                         scale_in_cooldown=Duration.seconds(300),
                                         scale_out_cooldown=Duration.seconds(60))
        if svc.requests_per_target:
            scaling.scale_on_request_count("Requests", requests_per_target=svc.requests_per_target,
                                           target_group=self.target_group)

        for extra in config.extra_containers:
            self._extra_container(extra)
        if config.backup.enabled:
            self._backup_task(config, network, database, storage, parts, image, env)
        if svc.waf:
            self._waf(svc.waf_rate_limit_per_5min)

    # --- the team's own containers --------------------------------------------------------
    def _extra_container(self, extra: ExtraContainer) -> None:
        task = ecs.FargateTaskDefinition(
            self, f"{extra.name}Task", cpu=extra.cpu, memory_limit_mib=extra.memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=_arch(extra.architecture),
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX))
        secrets = {}
        for name, ref in extra.secrets.items():
            secret, key = wiring.imported_secret(self, f"{extra.name}{name}", ref)
            secrets[name] = ecs.Secret.from_secrets_manager(secret, key) if key else ecs.Secret.from_secrets_manager(secret)
        task.add_container(extra.name, image=ecs.ContainerImage.from_registry(extra.image),
                           environment=extra.environment, secrets=secrets,
                           port_mappings=[ecs.PortMapping(container_port=extra.port)],
                           logging=ecs.LogDrivers.aws_logs(stream_prefix=extra.name, log_group=self.log_group))
        sg = ec2.SecurityGroup(self, f"{extra.name}Sg", vpc=self.cluster.vpc, description=f"{extra.name} tasks")
        sg.add_ingress_rule(self.alb_sg, ec2.Port.tcp(extra.port), "from the load balancer")
        self.alb_sg.add_egress_rule(sg, ec2.Port.tcp(extra.port), f"to {extra.name}")
        service = ecs.FargateService(self, f"{extra.name}Service", cluster=self.cluster, task_definition=task,
                                     desired_count=extra.desired_count, security_groups=[sg],
                                     vpc_subnets=ec2.SubnetSelection(subnet_group_name="app"),
                                     circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
                                     min_healthy_percent=100)
        self.listener.add_targets(
            extra.name, port=extra.port, protocol=elbv2.ApplicationProtocol.HTTP, targets=[service],
            priority=extra.priority, conditions=[elbv2.ListenerCondition.path_patterns(extra.path_patterns)],
            health_check=elbv2.HealthCheck(path=extra.health_check_path))

    # --- nightly `ownbase backup` ---------------------------------------------------------
    def _backup_task(self, config: DeployConfig, network: NetworkStack, database: DatabaseStack,
                     storage: StorageStack, parts: wiring.Parts, image: ecs.ContainerImage,
                     env: dict[str, str]) -> None:
        target = f"s3://{storage.backup_bucket.bucket_name}/{config.name}"
        task = ecs.FargateTaskDefinition(
            self, "BackupTask", family=f"{config.name}-backup", cpu=config.service.cpu, memory_limit_mib=config.service.memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=_arch(config.service.architecture),
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX))
        secrets = {name: ecs.Secret.from_secrets_manager(secret, key) if key else ecs.Secret.from_secrets_manager(secret)
                   for name, (secret, key) in self.secret_refs.items()}
        task.add_container("backup", image=image, command=["backup", "--to", target],
                           environment={**env, "OWNBASE_BACKUP_TARGET": target}, secrets=secrets,
                           logging=ecs.LogDrivers.aws_logs(stream_prefix="backup", log_group=self.log_group))
        # Reads the storage bucket (object manifest), writes only the backup bucket.
        storage.bucket.grant_read(task.task_role)
        storage.backup_bucket.grant_read_write(task.task_role)
        if storage.key is not None:
            storage.key.grant_encrypt_decrypt(task.task_role)
        events.Rule(self, "BackupSchedule", schedule=events.Schedule.expression(config.backup.schedule),
                    description="nightly ownbase backup",
                    targets=[targets.EcsTask(cluster=self.cluster, task_definition=task,
                                             subnet_selection=network.app_subnets,
                                             security_groups=[self.service_sg],
                                             platform_version=ecs.FargatePlatformVersion.LATEST)])
        self.backup_task_definition = task

    def _waf(self, limit: int) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name, priority=priority, override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name)),
                visibility_config=_visibility(name))

        acl = wafv2.CfnWebACL(
            self, "Waf", scope="REGIONAL", default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("ownbase"),
            rules=[
                # Not the Common rule set: its 8 KB body limit would block uploads and large inserts.
                managed("AWSManagedRulesKnownBadInputsRuleSet", 1),
                managed("AWSManagedRulesAmazonIpReputationList", 2),
                wafv2.CfnWebACL.RuleProperty(
                    name="per-ip-rate", priority=3, action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=limit, aggregate_key_type="IP")),
                    visibility_config=_visibility("per-ip-rate")),
            ])
        wafv2.CfnWebACLAssociation(self, "WafAlb", resource_arn=self.alb.load_balancer_arn,
                                   web_acl_arn=acl.attr_arn)


def allow(scope: Construct, cid: str, target: ec2.ISecurityGroup, source: ec2.ISecurityGroup, port: int,
          description: str) -> None:
    """An ingress rule on another stack's security group, created in *this* stack: the data
    stacks never reference the service stack, so there is no dependency cycle."""
    ec2.CfnSecurityGroupIngress(scope, cid, group_id=target.security_group_id, ip_protocol="tcp",
                                from_port=port, to_port=port, source_security_group_id=source.security_group_id,
                                description=description)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(cloud_watch_metrics_enabled=True, metric_name=name,
                                                    sampled_requests_enabled=True)


def _capacity(spot: bool) -> list[ecs.CapacityProviderStrategy] | None:
    if not spot:
        return [ecs.CapacityProviderStrategy(capacity_provider="FARGATE", weight=1)]
    # One task always on demand; the rest 3:1 on Spot (~70% cheaper, 2-minute interruption notice).
    return [ecs.CapacityProviderStrategy(capacity_provider="FARGATE", base=1, weight=1),
            ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=3)]


_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
              30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR",
              731: "TWO_YEARS", 1827: "FIVE_YEARS", 3653: "TEN_YEARS"}


def _retention(days: int) -> logs.RetentionDays:
    """CloudWatch only takes certain periods: the next one at or above the configured days."""
    chosen = min((d for d in _RETENTION if d >= days), default=3653)
    return getattr(logs.RetentionDays, _RETENTION[chosen])

"""The API Gateway (HTTP API) + Lambda variant of the service (config ``api_mode: lambda``).

Limits and how they are handled (docs/aws/04-lambda.md):
- Lambda takes at most 6 MB per synchronous request (API Gateway 10 MB) and API Gateway waits at
  most 29 s: /storage/v1/* (uploads, resumable TUS chunks, downloads) goes to the Fargate service
  instead, and the handler answers oversized bodies with a clear 413.
- HTTP APIs carry no websockets: /realtime/* goes to the Fargate service too.
One CloudFront distribution is the single public URL and routes by path, so supabase-js still
needs only one URL. HTTP APIs cannot take a WAF web ACL; CloudFront can (lambda.cloudfront_web_acl_arn).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ownbase_cdk import wiring
from ownbase_cdk.config import DeployConfig

FARGATE_PATHS = ("/realtime/*", "/storage/v1/*")
LAMBDA_CA_BUNDLE = "/var/task/rds-global-bundle.pem"  # put there by build_lambda.sh


class LambdaApi(Construct):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, vpc: ec2.IVpc,
                 alb: elbv2.ApplicationLoadBalancer, alb_https: bool, code_dir: Path) -> None:
        super().__init__(scope, cid)
        cfg = config.lambda_api
        self.api = apigw.HttpApi(self, "HttpApi", create_default_stage=False,
                                 description="ownbase HTTP APIs on Lambda")
        apigw.HttpStage(self, "Default", http_api=self.api, stage_name="$default", auto_deploy=True,
                        throttle=apigw.ThrottleSettings(rate_limit=cfg.throttle_rate_per_second,
                                                        burst_limit=cfg.throttle_burst))
        stack = Stack.of(self)
        api_domain = f"{self.api.api_id}.execute-api.{stack.region}.{stack.url_suffix}"
        no_cache = dict(
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        )
        alb_origin = origins.LoadBalancerV2Origin(
            alb, protocol_policy=(cloudfront.OriginProtocolPolicy.HTTPS_ONLY if alb_https
                                  else cloudfront.OriginProtocolPolicy.HTTP_ONLY),
            read_timeout=Duration.seconds(60), keepalive_timeout=Duration.seconds(60))
        self.distribution = cloudfront.Distribution(
            self, "FrontDoor",
            comment="ownbase: HTTP APIs on Lambda, realtime and storage on Fargate",
            default_behavior=cloudfront.BehaviorOptions(origin=origins.HttpOrigin(api_domain), **no_cache),
            additional_behaviors={path: cloudfront.BehaviorOptions(origin=alb_origin, **no_cache)
                                  for path in FARGATE_PATHS},
            web_acl_id=cfg.cloudfront_web_acl_arn or None,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        self.security_group = ec2.SecurityGroup(self, "FunctionSg", vpc=vpc, description="ownbase Lambda")
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH)
        self.function = lambda_.Function(
            self, "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64 if cfg.architecture == "arm64" else lambda_.Architecture.X86_64,
            handler="ownbase.aws.lambda_entry.handler",
            code=lambda_.Code.from_asset(str(code_dir)),
            memory_size=cfg.memory_mib,
            timeout=Duration.seconds(cfg.timeout_seconds),
            reserved_concurrent_executions=cfg.reserved_concurrency,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="app"),
            security_groups=[self.security_group],
            log_group=self.log_group,
        )
        CfnOutput(self, "Url", value=self.url)

    def configure(self, parts: wiring.Parts, env: dict[str, str],
                  secret_refs: dict[str, tuple[object, str | None]], bucket: object, key: object | None) -> None:
        """Environment, secrets (fetched at cold start: Lambda has no secret injection) and grants."""
        cfg = parts.config.lambda_api
        values = {**env, "OWNBASE_DB_POOL_MIN": "0", "OWNBASE_DB_POOL_MAX": str(cfg.db_pool_max),
                  "OWNBASE_DATA_DIR": "/tmp/ownbase", "OWNBASE_DB_SSL_ROOT_CERT": LAMBDA_CA_BUNDLE}
        arns: dict[str, str] = {}
        for name, (secret, field) in secret_refs.items():
            secret.grant_read(self.function)  # type: ignore[attr-defined]
            arn = secret.secret_arn  # type: ignore[attr-defined]
            arns[name] = f"{arn}:{field}" if field else arn
        values["OWNBASE_AWS_SECRET_ARNS"] = wiring.stack_json(self, arns)
        for name, value in values.items():
            self.function.add_environment(name, value)
        wiring.grant_app(self.function, parts, bucket, key)
        self.api.add_routes(path="/{proxy+}", methods=[apigw.HttpMethod.ANY],
                            integration=integrations.HttpLambdaIntegration("Lambda", self.function))

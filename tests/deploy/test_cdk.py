"""The CDK app synthesized offline (explicit account/region, no lookups, no AWS credentials), and
its templates checked for the resources and security properties issue 12 asks for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

import aws_cdk as cdk  # noqa: E402  (the test extra installs aws-cdk-lib; a missing one must fail)
from aws_cdk.assertions import Match, Template  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from ownbase_cdk.app_builder import Stacks, build  # noqa: E402
from ownbase_cdk.config import DeployConfig, load_config  # noqa: E402
from tests.deploy.conftest import AWS_DIR  # noqa: E402

CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666"
EXTRA_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:smtp-AbCdEf:password"
FULL = {
    "account": "123456789012", "region": "eu-west-1", "api_mode": "lambda",
    "network": {"egress": "endpoints"},
    "database": {"read_replica": True, "multi_az": True},
    "service": {"max_count": 4, "spot": True, "waf": True, "certificate_arn": CERT,
                "domain_name": "api.example.com"},
    "storage": {"encryption": "kms", "cors_origins": ["https://app.example.com"]},
    "mail": {"domain": "example.com", "bounce_topic_email": "ops@example.com"},
    "cache": {"enabled": True, "replicas": 1},
    "cognito": {"enabled": True},
    "frontend": {"enabled": True},
    "alarms": {"email": "ops@example.com", "billing_threshold_usd": 120},
    "ownbase": {"site_url": "https://app.example.com", "secrets": {"OWNBASE_MAIL_SMTP_PASSWORD": EXTRA_SECRET},
                "environment": {"OWNBASE_AUTH_AUTOCONFIRM": "false"}},
    "extra_containers": [{"name": "reports", "image": "public.ecr.aws/acme/reports:1.2",
                          "path_patterns": ["/reports/*"], "priority": 10,
                          "secrets": {"REPORTS_DB_PASSWORD": EXTRA_SECRET}}],
}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|PRIVATE_KEY|TOKEN", re.I)


class Synth:
    """One synthesized app; templates made on first use."""

    def __init__(self, config: DeployConfig, code_dir: Path) -> None:
        self.app = cdk.App()
        self.stacks: Stacks = build(self.app, config, code_dir=code_dir)
        self.assembly = self.app.synth()
        self._templates: dict[str, Template] = {}

    def t(self, name: str) -> Template:
        if name not in self._templates:
            self._templates[name] = Template.from_stack(getattr(self.stacks, name))
        return self._templates[name]

    def j(self, name: str) -> dict[str, Any]:
        return self.t(name).to_json()


@pytest.fixture(scope="module")
def offline_env() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_") or k == "CDK_DEFAULT_ACCOUNT"}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="module")
def default(offline_env: None) -> Synth:
    return Synth(DeployConfig(), AWS_DIR)


@pytest.fixture(scope="module")
def full(offline_env: None, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    code = tmp_path_factory.mktemp("lambda-code")
    (code / "placeholder.txt").write_text("the real bundle comes from build_lambda.sh")
    return Synth(DeployConfig.model_validate(FULL), code)


def resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == kind}


def props(tpl: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [v.get("Properties", {}) for v in resources(tpl, kind).values()]


def containers(synth: Synth) -> list[dict[str, Any]]:
    return [c for p in props(synth.j("service"), "AWS::ECS::TaskDefinition") for c in p["ContainerDefinitions"]]


def ownbase_container(synth: Synth) -> dict[str, Any]:
    return next(c for c in containers(synth) if c["Name"] == "ownbase")


def policy_statements(tpl: dict[str, Any], role_fragment: str) -> list[dict[str, Any]]:
    out = []
    for policy in props(tpl, "AWS::IAM::Policy"):
        roles = json.dumps(policy.get("Roles", []))
        if role_fragment in roles:
            out += policy["PolicyDocument"]["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- offline synth ------------------------------------------------------------------------------

def test_synth_needs_no_lookups_or_credentials(default: Synth, full: Synth) -> None:
    for synth in (default, full):
        manifest = json.loads((Path(synth.assembly.directory) / "manifest.json").read_text())
        assert not manifest.get("missing")  # no context lookups (VPC, AZs, AMIs...)
        envs = {a["environment"] for a in manifest["artifacts"].values()
                if a["type"] == "aws:cloudformation:stack"}
        assert envs <= {f"aws://{synth.stacks.service.account}/{synth.stacks.service.region}",
                        f"aws://{synth.stacks.service.account}/us-east-1"}
    names = {s.stack_name for s in full.assembly.stacks}
    assert {"ownbase-network", "ownbase-registry", "ownbase-database", "ownbase-storage", "ownbase-service", "ownbase-alarms",
            "ownbase-billing", "ownbase-mail", "ownbase-cache", "ownbase-cognito", "ownbase-frontend"} <= names


def test_cdk_app_entry_synthesizes_from_config_file(tmp_path: Path) -> None:
    """`cdk synth` runs `python3 app.py` (cdk.json): run it the same way, with a config file."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"account": "123456789012", "region": "eu-central-1", "name": "acme",
                                   "backup": {"enabled": False}}))
    assert json.loads((AWS_DIR / "cdk.json").read_text())["app"] == "python3 app.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CDK_OUTDIR=str(tmp_path / "out"), CDK_CONTEXT_JSON=json.dumps({"config": str(cfg)}))
    out = subprocess.run([sys.executable, "app.py"], cwd=AWS_DIR, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    service = json.loads((tmp_path / "out" / "acme-service.template.json").read_text())
    assert not resources(service, "AWS::Events::Rule")  # the file's choice was applied
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["artifacts"]["acme-database"]["environment"] == "aws://123456789012/eu-central-1"


def test_templates_pass_cfn_lint(default: Synth, full: Synth) -> None:
    """AWS's resource specifications (cfn-lint): no invalid property, value or reference."""
    # The test extra's cfn-lint, next to this interpreter (not whatever else is on PATH).
    linter = str(Path(sys.executable).parent / "cfn-lint")
    templates = [str(p) for synth in (default, full)
                 for p in sorted(Path(synth.assembly.directory).glob("*.template.json"))]
    assert len(templates) >= 15
    out = subprocess.run([linter, "--format", "parseable", *templates], capture_output=True, text=True,
                         timeout=300)
    errors = [line for line in out.stdout.splitlines() if re.search(r":E\d{4}:", line)]
    assert errors == [], "\n".join(errors)
    assert out.returncode in (0, 4, 8, 12), out.stderr  # 2 = errors; 4/8 = warnings/informational


# --- config -------------------------------------------------------------------------------------

def _keys(model: type, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    out = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _keys(ann, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def _yaml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("tags", "environment", "secrets"):
            out |= _yaml_keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_example_config_documents_every_knob_with_its_default() -> None:
    example = AWS_DIR / "config.example.yaml"
    data = yaml.safe_load(example.read_text())
    assert _yaml_keys(data) == _keys(DeployConfig)
    loaded = load_config(example)
    assert loaded.model_dump() == DeployConfig().model_dump()  # the example *is* the defaults


def test_config_rejects_typos_secrets_in_env_and_unsafe_scaling(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="instance_typ"):
        DeployConfig.model_validate({"database": {"instance_typ": "t4g.small"}})
    with pytest.raises(ValidationError, match="ownbase.secrets"):
        DeployConfig.model_validate({"ownbase": {"environment": {"OWNBASE_MAIL_SMTP_PASSWORD": "hunter2"}}})
    with pytest.raises(ValidationError, match="cache.enabled"):
        DeployConfig.model_validate({"service": {"max_count": 3}})
    with pytest.raises(ValidationError, match="desired_count"):
        DeployConfig.model_validate({"service": {"desired_count": 2}})
    with pytest.raises(ValidationError):
        DeployConfig.model_validate({"database": {"postgres_major": 15}})
    with pytest.raises(ValidationError, match="minor of"):
        DeployConfig.model_validate({"database": {"postgres_major": 17, "engine_version": "16.13"}})


# --- network ------------------------------------------------------------------------------------

def test_network_nat_by_default_endpoints_selectable(default: Synth, full: Synth) -> None:
    net = default.j("network")
    subnets = props(net, "AWS::EC2::Subnet")
    assert len(subnets) == 6 and len({json.dumps(s["AvailabilityZone"]) for s in subnets}) == 2
    assert sum(1 for s in subnets if s.get("MapPublicIpOnLaunch")) == 2  # only the ALB's subnets
    assert len(resources(net, "AWS::EC2::NatGateway")) == 1
    only_s3 = props(net, "AWS::EC2::VPCEndpoint")
    assert len(only_s3) == 1 and only_s3[0]["VpcEndpointType"] == "Gateway"  # free S3 gateway
    isolated = full.j("network")
    assert not resources(isolated, "AWS::EC2::NatGateway")
    endpoints = json.dumps(props(isolated, "AWS::EC2::VPCEndpoint"))
    for service in ("secretsmanager", "ecr.api", "ecr.dkr", "logs", "email", ".s3"):
        assert service in endpoints, service
    # No route to the internet from the task subnets without NAT.
    routes = props(isolated, "AWS::EC2::Route")
    assert all("GatewayId" in r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0")
    assert len([r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"]) == 2  # public subnets only


# --- database -----------------------------------------------------------------------------------

def test_database_encrypted_private_protected_with_logical_replication(default: Synth, full: Synth) -> None:
    db = default.t("database")
    db.has_resource_properties("AWS::RDS::DBInstance", {
        "Engine": "postgres", "EngineVersion": "16", "DBInstanceClass": "db.t4g.micro",
        "StorageEncrypted": True, "DeletionProtection": True, "PubliclyAccessible": False,
        "BackupRetentionPeriod": 7, "MultiAZ": False,
        "MasterUserPassword": Match.object_like({"Fn::Join": Match.any_value()}),
    })
    assert "resolve:secretsmanager" in json.dumps(default.j("database"))  # password only in the secret
    db.has_resource_properties("AWS::RDS::DBParameterGroup", {
        "Family": "postgres16",
        "Parameters": {"rds.logical_replication": "1", "rds.force_ssl": "1"},
    })
    db.resource_count_is("AWS::SecretsManager::Secret", 1)
    for sg in props(default.j("database"), "AWS::EC2::SecurityGroup"):
        assert "0.0.0.0/0" not in json.dumps(sg.get("SecurityGroupIngress", []))
    replicated = full.t("database")
    replicated.has_resource_properties("AWS::RDS::DBInstance", {"MultiAZ": True})
    replicated.has_resource_properties("AWS::RDS::DBInstance", {
        "SourceDBInstanceIdentifier": Match.any_value(), "PubliclyAccessible": False})


def test_read_replica_wired_to_read_url(full: Synth, default: Synth) -> None:
    env = {e["Name"]: e["Value"] for e in ownbase_container(full)["Environment"]}
    assert "OWNBASE_DATABASE_READ_HOST" in env and "ReadReplica" in json.dumps(env["OWNBASE_DATABASE_READ_HOST"])
    assert "OWNBASE_DATABASE_READ_HOST" not in {e["Name"] for e in ownbase_container(default)["Environment"]}


# --- storage ------------------------------------------------------------------------------------

def test_storage_bucket_private_encrypted_versioned_with_lifecycle_and_cors(default: Synth, full: Synth) -> None:
    tpl = default.j("storage")
    buckets = props(tpl, "AWS::S3::Bucket")
    assert len(buckets) == 2  # storage + backups
    for bucket in buckets:
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        algo = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert algo["SSEAlgorithm"] == "AES256"
    storage = next(b for b in buckets if "CorsConfiguration" in b)
    rules = storage["LifecycleConfiguration"]["Rules"]
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 7 for r in rules)
    cors = storage["CorsConfiguration"]["CorsRules"][0]
    assert cors["AllowedOrigins"] == ["http://localhost:3000"] and "PUT" in cors["AllowedMethods"]
    # TLS-only bucket policies.
    policies = json.dumps(props(tpl, "AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policies and '"Effect": "Deny"' in policies
    kms = full.j("storage")
    assert resources(kms, "AWS::KMS::Key")
    assert all(b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
               ["SSEAlgorithm"] == "aws:kms" for b in props(kms, "AWS::S3::Bucket"))
    assert props(kms, "AWS::KMS::Key")[0]["EnableKeyRotation"] is True


# --- service ------------------------------------------------------------------------------------

def test_fargate_graviton_defaults_and_load_balancer(default: Synth) -> None:
    svc = default.t("service")
    svc.has_resource_properties("AWS::ECS::TaskDefinition", {
        "Cpu": "512", "Memory": "1024", "RequiresCompatibilities": ["FARGATE"],
        "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}})
    svc.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {
        "Scheme": "internet-facing",
        "LoadBalancerAttributes": Match.array_with([{"Key": "idle_timeout.timeout_seconds", "Value": "3600"}])})
    svc.has_resource_properties("AWS::ElasticLoadBalancingV2::TargetGroup", {
        "HealthCheckPath": "/ready", "Matcher": {"HttpCode": "200"},
        "TargetGroupAttributes": Match.array_with([{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])})
    svc.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {"Port": 80, "Protocol": "HTTP"})
    svc.has_resource_properties("AWS::ECS::Service", {
        "LaunchType": Match.absent(),
        "DeploymentConfiguration": Match.object_like({
            "MinimumHealthyPercent": 100, "MaximumPercent": 200,
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}),
        "NetworkConfiguration": {"AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})}})
    svc.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 1, "MaxCapacity": 1})
    svc.has_resource_properties("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "TargetTrackingScalingPolicyConfiguration": Match.object_like({
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            "TargetValue": 60})})
    svc.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    default.t("registry").has_resource_properties("AWS::ECR::Repository", {
        "RepositoryName": "ownbase", "ImageScanningConfiguration": {"ScanOnPush": True}})
    image = ownbase_container(default)["Image"]
    assert "ownbase-registry" in json.dumps(image) and ":latest" in json.dumps(image)
    container = ownbase_container(default)
    assert container["StopTimeout"] == 90
    assert container["HealthCheck"]["Command"] == ["CMD", "python", "-m", "ownbase.aws.healthcheck"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    # Tasks only take traffic from the load balancer.
    tasks_sg = [p for p in props(default.j("service"), "AWS::EC2::SecurityGroupIngress")
                if p.get("FromPort") == 8000]
    assert tasks_sg and all("SourceSecurityGroupId" in p and "CidrIp" not in p for p in tasks_sg)


def test_https_autoscaling_spot_waf_and_extra_container(full: Synth) -> None:
    svc = full.t("service")
    svc.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {
        "Port": 443, "Protocol": "HTTPS", "Certificates": [{"CertificateArn": CERT}]})
    svc.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {
        "Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect"})]})
    svc.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {"MaxCapacity": 4})
    svc.has_resource_properties("AWS::ECS::Service", {"CapacityProviderStrategy": Match.array_with([
        Match.object_like({"CapacityProvider": "FARGATE", "Base": 1}),
        Match.object_like({"CapacityProvider": "FARGATE_SPOT"})])})
    svc.has_resource_properties("AWS::WAFv2::WebACL", {"Scope": "REGIONAL", "Rules": Match.array_with([
        Match.object_like({"Name": "per-ip-rate", "Action": {"Block": {}}})])})
    svc.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    svc.has_resource_properties("AWS::ElasticLoadBalancingV2::ListenerRule", {
        "Priority": 10, "Conditions": [Match.object_like({"Field": "path-pattern",
                                                          "PathPatternConfig": {"Values": ["/reports/*"]}})]})
    reports = next(c for c in containers(full) if c["Name"] == "reports")
    # ECS's form for one JSON key of a secret: <arn>:<key>:<version-stage>:<version-id>
    assert reports["Secrets"] == [{"Name": "REPORTS_DB_PASSWORD", "ValueFrom": EXTRA_SECRET + "::"}]
    env = {e["Name"]: e["Value"] for e in ownbase_container(full)["Environment"]}
    assert env["OWNBASE_PUBLIC_URL"] != "" and "FrontDoor" in json.dumps(env["OWNBASE_PUBLIC_URL"])


def test_no_secret_in_plain_environment(default: Synth, full: Synth) -> None:
    for synth in (default, full):
        for container in containers(synth):
            for item in container.get("Environment", []):
                assert not SECRET_WORDS.search(item["Name"]), item["Name"]
                assert "secretsmanager" not in json.dumps(item["Value"]), item
        for fn in props(synth.j("service"), "AWS::Lambda::Function"):
            for name, value in fn.get("Environment", {}).get("Variables", {}).items():
                assert name == "OWNBASE_AWS_SECRET_ARNS" or not SECRET_WORDS.search(name), name
                assert "resolve:secretsmanager" not in json.dumps(value), name  # ARNs only, never values
    secrets = {s["Name"]: s["ValueFrom"] for s in ownbase_container(full)["Secrets"]}
    assert {"OWNBASE_DATABASE_SECRET", "OWNBASE_JWT_PRIVATE_KEY", "OWNBASE_REDIS_AUTH_TOKEN",
            "OWNBASE_MAIL_SMTP_PASSWORD"} <= set(secrets)
    assert secrets["OWNBASE_MAIL_SMTP_PASSWORD"] == EXTRA_SECRET + "::"
    assert "ownbase/jwt-private-key" in json.dumps(secrets["OWNBASE_JWT_PRIVATE_KEY"])


def test_task_role_least_privilege(default: Synth) -> None:
    tpl = default.j("service")
    task_roles = [k for k in resources(tpl, "AWS::IAM::Role") if k.startswith("TaskTaskRole")]
    assert len(task_roles) == 1
    statements = policy_statements(tpl, task_roles[0])
    assert statements
    for st in statements:
        assert st["Effect"] == "Allow"
        actions = as_list(st["Action"])
        assert "*" not in actions and not any(a.endswith(":*") and not a.startswith("s3:") for a in actions)
        for resource in as_list(st["Resource"]):
            assert resource != "*", st
        if any(a.startswith("s3:") for a in actions):
            # Only the storage bucket (imported from the storage stack), never the backup bucket.
            text = json.dumps(st["Resource"])
            assert "StorageStorage" in text or "Storage" in text, text
            assert "Backups" not in text
        if any(a.startswith("ses:") for a in actions):
            assert actions == ["ses:SendEmail"]
    assert not any(a.startswith(("secretsmanager:", "iam:", "rds:", "ecs:"))
                   for st in statements for a in as_list(st["Action"]))
    # The execution role reads exactly the secrets the container gets.
    exec_roles = [k for k in resources(tpl, "AWS::IAM::Role") if k.startswith("TaskExecutionRole")]
    reads = [st for st in policy_statements(tpl, exec_roles[0])
             if "secretsmanager:GetSecretValue" in as_list(st["Action"])]
    assert reads and all(r != "*" for st in reads for r in as_list(st["Resource"]))


def test_backup_scheduled_task(default: Synth) -> None:
    svc = default.t("service")
    svc.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": "cron(0 3 * * ? *)",
        "Targets": [Match.object_like({"EcsParameters": Match.object_like({"LaunchType": "FARGATE"})})]})
    svc.has_resource_properties("AWS::ECS::TaskDefinition", {"Family": "ownbase-backup"})
    svc.has_resource_properties("AWS::ECS::Cluster", {"ClusterName": "ownbase"})  # docs/aws/03 uses both
    backup = next(c for c in containers(default) if c["Name"] == "backup")
    assert backup["Command"][:2] == ["backup", "--to"]
    env = {e["Name"]: e["Value"] for e in backup["Environment"]}
    assert "OWNBASE_BACKUP_TARGET" in env and "Backups" in json.dumps(env["OWNBASE_BACKUP_TARGET"])
    tpl = default.j("service")
    roles = [k for k in resources(tpl, "AWS::IAM::Role") if k.startswith("BackupTaskTaskRole")]
    writes = [st for st in policy_statements(tpl, roles[0]) if "s3:PutObject" in as_list(st["Action"])]
    assert writes and all("Backups" in json.dumps(st["Resource"]) for st in writes)


# --- mail, cache, cognito, frontend ----------------------------------------------------------------

def test_ses_identity_with_dkim_and_bounces(full: Synth) -> None:
    mail = full.t("mail")
    mail.has_resource_properties("AWS::SES::EmailIdentity", {
        "EmailIdentity": "example.com", "DkimAttributes": {"SigningEnabled": True},
        "MailFromAttributes": Match.object_like({"MailFromDomain": "mail.example.com"})})
    mail.has_resource_properties("AWS::SES::ConfigurationSetEventDestination", {
        "EventDestination": Match.object_like({"MatchingEventTypes": Match.array_with(["bounce", "complaint"])})})
    mail.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})
    env = {e["Name"]: e["Value"] for e in ownbase_container(full)["Environment"]}
    assert env["OWNBASE_MAIL_BACKEND"] == "ses" and env["OWNBASE_MAIL_FROM"] == "noreply@example.com"


def test_redis_tls_auth_and_wiring(full: Synth) -> None:
    cache = full.t("cache")
    cache.has_resource_properties("AWS::ElastiCache::ReplicationGroup", {
        "TransitEncryptionEnabled": True, "AtRestEncryptionEnabled": True, "AutomaticFailoverEnabled": True,
        "NumCacheClusters": 2, "CacheNodeType": "cache.t4g.micro"})
    group = props(full.j("cache"), "AWS::ElastiCache::ReplicationGroup")[0]
    assert "resolve:secretsmanager" in json.dumps(group["AuthToken"])
    env = {e["Name"] for e in ownbase_container(full)["Environment"]}
    assert {"OWNBASE_REDIS_HOST", "OWNBASE_REDIS_PORT"} <= env
    ingress = [p for p in props(full.j("service"), "AWS::EC2::SecurityGroupIngress") if p.get("FromPort") == 6379]
    assert ingress and all("SourceSecurityGroupId" in p for p in ingress)


def test_cognito_pool_wired_to_ownbase_settings(full: Synth) -> None:
    cognito = full.t("cognito")
    cognito.has_resource_properties("AWS::Cognito::UserPoolClient", {"GenerateSecret": False})
    env = {e["Name"]: e["Value"] for e in ownbase_container(full)["Environment"]}
    assert "Users" in json.dumps(env["OWNBASE_AUTH_COGNITO_USER_POOL_ID"])
    assert env["OWNBASE_AUTH_COGNITO_REGION"] == "eu-west-1"
    assert "App" in json.dumps(env["OWNBASE_AUTH_COGNITO_CLIENT_IDS"])


def test_frontend_private_bucket_with_spa_fallback(full: Synth) -> None:
    fe = full.t("frontend")
    fe.has_resource_properties("AWS::CloudFront::Distribution", {"DistributionConfig": Match.object_like({
        "DefaultRootObject": "index.html",
        "CustomErrorResponses": Match.array_with([
            Match.object_like({"ErrorCode": 403, "ResponseCode": 200, "ResponsePagePath": "/index.html"}),
            Match.object_like({"ErrorCode": 404, "ResponseCode": 200, "ResponsePagePath": "/index.html"})]),
        "DefaultCacheBehavior": Match.object_like({"ViewerProtocolPolicy": "redirect-to-https"})})})
    fe.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    bucket = props(full.j("frontend"), "AWS::S3::Bucket")[0]
    assert bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


# --- alarms -------------------------------------------------------------------------------------

def test_alarms_present(default: Synth, full: Synth) -> None:
    tpl = default.j("alarms")
    alarms = props(tpl, "AWS::CloudWatch::Alarm")
    text = json.dumps(alarms)
    for metric in ("HTTPCode_Target_5XX_Count", "TargetResponseTime", "CPUUtilization", "FreeStorageSpace",
                   "FreeableMemory", "MemoryUtilization"):
        assert metric in text, metric
    assert len(alarms) == 6 and all(a["AlarmActions"] for a in alarms)
    billing = full.t("billing")
    billing.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/Billing", "MetricName": "EstimatedCharges", "Threshold": 120,
        "Dimensions": [{"Name": "Currency", "Value": "USD"}]})
    assert full.stacks.billing.region == "us-east-1" and full.stacks.service.region == "eu-west-1"
    assert default.j("billing")["Resources"] and props(default.j("billing"), "AWS::CloudWatch::Alarm")[0]["Threshold"] == 50


# --- Lambda variant ------------------------------------------------------------------------------

def test_lambda_variant_http_api_limits_and_front_door(full: Synth, default: Synth) -> None:
    svc = full.t("service")
    svc.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "ownbase.aws.lambda_entry.handler", "Runtime": "python3.12", "Architectures": ["arm64"],
        "Timeout": 29, "MemorySize": 1024, "ReservedConcurrentExecutions": 20,
        "VpcConfig": Match.object_like({"SubnetIds": Match.any_value()})})
    fn = props(full.j("service"), "AWS::Lambda::Function")
    variables = next(f for f in fn if f.get("Handler") == "ownbase.aws.lambda_entry.handler")["Environment"]["Variables"]
    assert variables["OWNBASE_DB_POOL_MAX"] == "2" and "OWNBASE_AWS_SECRET_ARNS" in variables
    svc.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP"})
    svc.has_resource_properties("AWS::ApiGatewayV2::Stage", {
        "StageName": "$default", "DefaultRouteSettings": {"ThrottlingBurstLimit": 400, "ThrottlingRateLimit": 200}})
    svc.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "ANY /{proxy+}"})
    dist = props(full.j("service"), "AWS::CloudFront::Distribution")[0]["DistributionConfig"]
    paths = {b["PathPattern"] for b in dist["CacheBehaviors"]}
    assert paths == {"/realtime/*", "/storage/v1/*"}  # websockets and uploads never meet the 6 MB / 29 s limits
    # The function reads only its own secrets.
    role = [k for k in resources(full.j("service"), "AWS::IAM::Role") if k.startswith("LambdaApiFunction")][0]
    reads = [st for st in policy_statements(full.j("service"), role)
             if "secretsmanager:GetSecretValue" in as_list(st["Action"])]
    assert reads and all(r != "*" for st in reads for r in as_list(st["Resource"]))
    assert not resources(default.j("service"), "AWS::Lambda::Function") or all(
        f.get("Handler") != "ownbase.aws.lambda_entry.handler"
        for f in props(default.j("service"), "AWS::Lambda::Function"))

"""CloudWatch alarms to one SNS topic: errors, latency, database CPU/storage/memory, task memory;
and the billing alarm, which must live in us-east-1 (the only region with billing metrics)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from ownbase_cdk.config import DeployConfig
from ownbase_cdk.database import DatabaseStack
from ownbase_cdk.service import ServiceStack


def _topic(scope: Construct, email: str) -> sns.Topic:
    topic = sns.Topic(scope, "AlarmTopic", display_name="ownbase alarms")
    if email:
        topic.add_subscription(subs.EmailSubscription(email))
    return topic


class AlarmsStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, service: ServiceStack,
                 database: DatabaseStack, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        a = config.alarms
        self.topic = _topic(self, a.email)
        five = Duration.minutes(5)
        alb = service.alb.metrics
        errors = alb.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five, statistic="Sum")
        requests = alb.request_count(period=five, statistic="Sum")
        rate = cw.MathExpression(expression="IF(requests > 0, 100 * errors / requests, 0)",
                                 using_metrics={"errors": errors, "requests": requests}, period=five,
                                 label="5xx % of requests")
        instance = database.instance
        free_gb = cw.MathExpression(expression="storage / 1073741824",
                                    using_metrics={"storage": instance.metric_free_storage_space(period=five)},
                                    period=five)
        free_mb = cw.MathExpression(expression="memory / 1048576",
                                    using_metrics={"memory": instance.metric_freeable_memory(period=five)},
                                    period=five)
        below = cw.ComparisonOperator.LESS_THAN_THRESHOLD
        checks = [
            ("Api5xxRate", rate, a.error_rate_percent, None, "more than the allowed share of 5xx answers"),
            ("ApiLatencyP95", alb.target_response_time(period=five, statistic="p95"), a.latency_p95_seconds,
             None, "95th percentile response time"),
            ("DbCpu", instance.metric_cpu_utilization(period=five), a.db_cpu_percent, None, "database CPU"),
            ("DbFreeStorage", free_gb, a.db_free_storage_gb, below, "database free storage (GB)"),
            ("DbFreeMemory", free_mb, a.db_free_memory_mb, below, "database freeable memory (MB)"),
            ("ServiceMemory", service.service.metric_memory_utilization(period=five), a.service_memory_percent,
             None, "ownbase task memory"),
        ]
        for name, metric, threshold, comparison, what in checks:
            alarm = cw.Alarm(
                self, name, metric=metric, threshold=threshold, evaluation_periods=3, datapoints_to_alarm=2,
                comparison_operator=comparison or cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING, alarm_description=f"ownbase: {what}")
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            alarm.add_ok_action(actions.SnsAction(self.topic))


class BillingStack(Stack):
    """Deployed to us-east-1 whatever the app's region: AWS publishes EstimatedCharges only there
    (after "Receive Billing Alerts" is enabled once in the billing console, docs/aws/01-account.md)."""

    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        topic = _topic(self, config.alarms.email)
        charges = cw.Metric(namespace="AWS/Billing", metric_name="EstimatedCharges",
                            dimensions_map={"Currency": "USD"}, statistic="Maximum", period=Duration.hours(6))
        alarm = cw.Alarm(self, "Billing", metric=charges, threshold=config.alarms.billing_threshold_usd,
                         evaluation_periods=1,
                         comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                         treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                         alarm_description=f"estimated charges this month above ${config.alarms.billing_threshold_usd:g}")
        alarm.add_alarm_action(actions.SnsAction(topic))

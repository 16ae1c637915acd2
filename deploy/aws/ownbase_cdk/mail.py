"""SES: a domain identity with Easy DKIM, a custom MAIL FROM, bounces and complaints to SNS."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from ownbase_cdk.config import DeployConfig


class MailStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        mail = config.mail
        self.domain = mail.domain
        self.from_address = mail.from_address or (f"noreply@{mail.domain}" if mail.domain else "")
        self.configuration_set = ses.ConfigurationSet(self, "ConfigSet",
                                                      reputation_metrics=True, sending_enabled=True)
        self.bounces = sns.Topic(self, "Bounces", display_name="ownbase mail bounces and complaints")
        self.configuration_set.add_event_destination(
            "BouncesAndComplaints",
            destination=ses.EventDestination.sns_topic(self.bounces),
            events=[ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT, ses.EmailSendingEvent.REJECT],
        )
        if mail.bounce_topic_email:
            self.bounces.add_subscription(subs.EmailSubscription(mail.bounce_topic_email))
        if mail.domain:
            ses.EmailIdentity(
                self, "Identity",
                identity=ses.Identity.domain(mail.domain),
                dkim_signing=True,  # Easy DKIM: three CNAMEs to publish (docs/aws/02-deploy.md)
                mail_from_domain=f"{mail.mail_from_subdomain}.{mail.domain}" if mail.mail_from_subdomain else None,
                configuration_set=self.configuration_set,
            )
        # What the task role may send as: this identity only (any identity until one is set up),
        # through this configuration set.
        self.identity_arns = [ses_identity_arn(self, mail.domain), (
            f"arn:{self.partition}:ses:{self.region}:{self.account}:configuration-set/"
            f"{self.configuration_set.configuration_set_name}")]


def ses_identity_arn(stack: Stack, domain: str) -> str:
    return f"arn:{stack.partition}:ses:{stack.region}:{stack.account}:identity/{domain or '*'}"

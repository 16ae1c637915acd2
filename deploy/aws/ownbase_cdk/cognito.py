"""Optional Cognito user pool + app client whose tokens ownbase accepts (OWNBASE_AUTH_COGNITO_*)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from ownbase_cdk.config import DeployConfig


class CognitoStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        cfg = config.cognito
        self.pool = cognito.UserPool(
            self, "Users",
            self_sign_up_enabled=cfg.self_sign_up,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(min_length=8),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.client = self.pool.add_client(
            "App",
            generate_secret=False,  # a browser/mobile app cannot keep one
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(callback_urls=cfg.callback_urls or [config.ownbase.site_url]),
            prevent_user_existence_errors=True,
        )

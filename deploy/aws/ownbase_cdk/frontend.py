"""S3 + CloudFront for a single-page app: private bucket (origin access control), SPA fallback."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ownbase_cdk.config import DeployConfig


class FrontendStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        fe = config.frontend
        self.bucket = s3.Bucket(
            self, "Site",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        cert = acm.Certificate.from_certificate_arn(self, "Cert", fe.certificate_arn) if fe.certificate_arn else None
        # A deep link (/settings/profile) has no object: answer index.html so the SPA router runs.
        spa = [cloudfront.ErrorResponse(http_status=code, response_http_status=200,
                                        response_page_path="/index.html", ttl=Duration.seconds(0))
               for code in (403, 404)]
        self.distribution = cloudfront.Distribution(
            self, "Cdn",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            ),
            error_responses=spa,
            domain_names=[fe.domain_name] if fe.domain_name and cert else None,
            certificate=cert,
            price_class=getattr(cloudfront.PriceClass, fe.price_class.upper().replace("PRICECLASS", "PRICE_CLASS")),
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
        )

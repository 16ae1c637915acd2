"""S3 buckets: ownbase's storage (private, encrypted, versioned) and the backup bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ownbase_cdk.config import DeployConfig


class StorageStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)
        st = config.storage
        self.key: kms.Key | None = None
        if st.encryption == "kms":
            self.key = kms.Key(self, "StorageKey", enable_key_rotation=True,
                               description="ownbase storage objects", removal_policy=RemovalPolicy.RETAIN)
        origins = st.cors_origins or [config.ownbase.site_url]
        self.bucket = s3.Bucket(
            self, "Storage",
            bucket_name=st.bucket_name or None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=self.key is not None,
            enforce_ssl=True,
            versioned=st.versioned,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-incomplete-uploads",
                                 abort_incomplete_multipart_upload_after=Duration.days(st.abort_multipart_days)),
                *([s3.LifecycleRule(id="expire-old-versions",
                                    noncurrent_version_expiration=Duration.days(st.noncurrent_version_days))]
                  if st.versioned else []),
            ],
            # Browsers fetch presigned downloads (OWNBASE_STORAGE_DOWNLOAD_REDIRECT=presigned)
            # and PUT to presigned URLs straight from the app's origin.
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD, s3.HttpMethods.PUT],
                              allowed_origins=origins, allowed_headers=["*"],
                              exposed_headers=["ETag", "Content-Length", "Content-Type"], max_age=3600)],
        )
        self.backup_bucket = s3.Bucket(
            self, "Backups",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-backups", expiration=Duration.days(config.backup.retention_days),
                                 noncurrent_version_expiration=Duration.days(7),
                                 abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
        )

"""One settings object for the whole process, read from ``OWNBASE_*`` variables and ``.env``.

Every field is documented in the README's settings table; defaults are product decisions
(see the issues) and tests only lower costs through environment variables.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

CsvList = Annotated[list[str], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OWNBASE_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- process / HTTP -------------------------------------------------------------
    data_dir: Path = Path(".ownbase")  # folder for keys, the embedded PostgreSQL and local storage
    host: str = "127.0.0.1"  # HTTP listen address
    port: int = Field(54321, ge=0, le=65535)  # HTTP port (Supabase's local default)
    workers: int = Field(1, ge=1, le=256)  # processes sharing the port; more than 1 needs OWNBASE_REDIS_URL
    public_url: str = ""  # external base URL (e.g. https://api.example.com); default http://host:port
    cors_origins: CsvList = ["*"]  # allowed browser origins, * for any
    trusted_proxies: CsvList = []  # CIDRs whose X-Forwarded-For is believed
    log_level: str = "info"  # debug, info, warning or error
    log_format: Literal["auto", "json", "text"] = "auto"  # auto (readable text on a terminal, JSON otherwise), json (one object per line) or text
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)  # JSON bodies (REST/auth/storage); uploads have their own
    rate_limit_ip_per_minute: int = Field(6000, ge=0)  # general limit per client IP, 0 disables
    rate_limit_user_per_minute: int = Field(6000, ge=0)  # general limit per user (JWT sub), 0 disables
    http_max_header_bytes: int = Field(32 * 1024, ge=1024)  # request line + headers; larger requests get 431 and the connection is closed
    http_header_timeout: float = Field(30.0, gt=0)  # seconds a connection may take to send a request's headers (slowloris bound)

    # --- database ------------------------------------------------------------------
    database_url: str = ""  # empty: embedded PostgreSQL in the data dir
    database_read_url: str = ""  # optional read replica for GET/HEAD
    db_pool_min: int = Field(1, ge=0)  # connections kept open per pool
    db_pool_max: int = Field(10, ge=1)  # maximum connections per pool and process
    db_authenticator_role: str = "ownbase_authenticator"  # login role the API connects as (can only switch into anon/authenticated/service_role)
    db_authenticator_password: str = ""  # empty: derived from the signing key material
    db_schemas: CsvList = ["public"]  # schemas exposed by /rest/v1
    db_max_rows: int = Field(1000, ge=1)  # cap on rows returned by one /rest/v1 read
    db_statement_timeout_ms: int = Field(8000, ge=0)  # per data request, 0 disables
    db_ssl_root_cert: str = ""  # CA bundle for sslmode=verify-full (e.g. RDS global bundle)
    db_startup_lock_timeout: int = Field(300, ge=1)  # seconds a starting process waits while another one does the start-up database work (migrations, roles) before it gives up
    db_aggregates_enabled: bool = False  # true: /rest/v1 allows aggregate functions in select (amount.sum(), count()), as PostgREST's db-aggregates-enabled
    db_tx_end: Literal["commit", "commit-allow-override", "rollback", "rollback-allow-override"] = "commit"  # how /rest/v1 ends each transaction, as PostgREST's db-tx-end; the -allow-override values honour Prefer: tx=commit|rollback
    db_plan_enabled: bool = False  # true: /rest/v1 answers Accept: application/vnd.pgrst.plan with the statement's EXPLAIN, as PostgREST's db-plan-enabled

    # --- dynamic tables (/db/v1) --------------------------------------------------------
    # Quotas against catalog bloat by one account; the service role is exempt. 0 disables.
    tables_max_databases_per_user: int = Field(100, ge=0)  # dynamic-table databases one user may own
    tables_max_tables_per_database: int = Field(500, ge=0)  # tables per dynamic-table database

    # --- keys / JWT -----------------------------------------------------------------
    jwt_algorithm: Literal["RS256", "ES256", "HS256"] = "RS256"  # algorithm of the generated signing key (RS256 or ES256; HS256 signs with OWNBASE_JWT_SECRET)
    jwt_private_key: str = ""  # PEM; empty: generated once into the data dir
    jwt_secret: str = ""  # legacy HS256 secret of a migrated Supabase project
    jwt_trusted_jwks: str = ""  # JWKS (JSON or file path) of a migrated project: its tokens stay accepted until they expire
    jwt_issuer: str = ""  # empty: <public_url>/auth/v1
    jwt_aud: str = "authenticated"  # audience claim of user access tokens
    anon_key: str = ""  # optional fixed anon key (e.g. the migrated project's)
    service_role_key: str = ""  # optional fixed service-role key
    publishable_keys: CsvList = []  # sb_publishable_… keys accepted as anon
    secret_keys: CsvList = []  # sb_secret_… keys accepted as service_role

    # --- redis ----------------------------------------------------------------------
    redis_url: str = ""  # redis:// or rediss:// ; empty: in-process state (one process only)
    redis_timeout_ms: int = Field(500, ge=1)  # longest a request waits on Redis before counting its rate limits per process until Redis answers again
    ready_require_redis: bool = False  # true: /ready answers 503 while Redis is unreachable (default: 200 with the degraded components listed)

    # --- auth -----------------------------------------------------------------------
    site_url: str = "http://localhost:3000"  # your app's URL: default redirect target and base of links in mails
    auth_redirect_allow_list: CsvList = []  # extra redirect_to URLs allowed (exact or with * wildcards)
    auth_autoconfirm: bool = False  # true: sign-up returns a session without email confirmation
    auth_disable_signup: bool = False  # true: no new users through /signup
    auth_anonymous_signins: bool = False  # true: /signup without credentials creates an anonymous user
    auth_bcrypt_cost: int = Field(12, ge=4, le=31)  # bcrypt cost of new password hashes (any cost verifies)
    auth_access_token_ttl: int = Field(900, ge=30)  # seconds
    auth_refresh_token_ttl: int = Field(7 * 24 * 3600, ge=60)  # seconds a refresh token/session stays usable
    auth_refresh_reuse_interval: int = Field(10, ge=0)  # seconds a just-rotated refresh token may be presented again
    auth_password_min_length: int = Field(6, ge=1, le=72)  # minimum password length
    auth_otp_length: int = Field(6, ge=6, le=10)  # digits of email codes
    auth_otp_ttl: int = Field(900, ge=30)  # seconds an email code or link stays valid
    auth_otp_max_per_hour: int = Field(3, ge=0)  # OTP / magic-link mails per address per hour
    auth_email_send_interval: int = Field(0, ge=0)  # minimum seconds between mails to one user
    auth_secure_password_change: bool = False  # require reauthentication nonce for password change
    auth_secure_email_change: bool = False  # confirm on both old and new address
    auth_rate_limit_window: int = Field(300, ge=1)  # seconds of the per-IP auth buckets
    auth_rate_limit_signup: int = Field(30, ge=0)  # sign-ups per IP per window
    auth_rate_limit_token: int = Field(150, ge=0)  # sign-ins/refreshes per IP per window
    auth_rate_limit_otp: int = Field(30, ge=0)  # OTP/magic-link/recover/resend requests per IP per window
    auth_rate_limit_verify: int = Field(30, ge=0)  # verifications per IP per window
    auth_cognito_user_pool_id: str = ""  # accept tokens of this Cognito user pool (e.g. eu-west-1_AbC123)
    auth_cognito_region: str = ""  # AWS region of the pool
    auth_cognito_client_ids: CsvList = []  # app client ids whose tokens are accepted
    auth_cognito_jwks_url: str = ""  # override (tests / private endpoints)
    auth_cognito_issuer: str = ""  # override of https://cognito-idp.<region>.amazonaws.com/<pool>
    auth_cognito_endpoint_url: str = ""  # cognito-idp API override (tests / VPC endpoints)
    # OAuth / OIDC sign-in providers, as GoTrue's GOTRUE_EXTERNAL_<P>_* (docs/auth.md "Sign-in with providers").
    auth_manual_linking_enabled: bool = False  # true: linkIdentity / unlinkIdentity allowed (GOTRUE_SECURITY_MANUAL_LINKING_ENABLED)
    auth_external_redirect_url: str = ""  # final redirect after a provider sign-in instead of redirect_to/site URL (GOTRUE_EXTERNAL_REDIRECTURL)
    auth_external_google_enabled: bool = False  # true: sign-in with Google
    auth_external_google_client_id: CsvList = []  # OAuth client id(s); the first is used for sign-in, all are accepted as ID-token audience
    auth_external_google_secret: str = ""  # OAuth client secret
    auth_external_google_url: str = ""  # base URL override; empty: https://accounts.google.com (OIDC issuer)
    auth_external_google_scopes: CsvList = []  # scopes added to the provider's defaults on every sign-in
    auth_external_github_enabled: bool = False  # true: sign-in with Github
    auth_external_github_client_id: CsvList = []  # OAuth client id(s); the first is used for sign-in, all are accepted as ID-token audience
    auth_external_github_secret: str = ""  # OAuth client secret
    auth_external_github_url: str = ""  # base URL override; empty: https://github.com (API at <url>/api/v3 when set)
    auth_external_github_scopes: CsvList = []  # scopes added to the provider's defaults on every sign-in
    auth_external_apple_enabled: bool = False  # true: sign-in with Apple
    auth_external_apple_client_id: CsvList = []  # OAuth client id(s); the first is used for sign-in, all are accepted as ID-token audience
    auth_external_apple_secret: str = ""  # OAuth client secret (Apple: the client-secret JWT)
    auth_external_apple_url: str = ""  # base URL override; empty: https://appleid.apple.com (OIDC issuer)
    auth_external_apple_scopes: CsvList = []  # scopes added to the provider's defaults on every sign-in
    auth_external_azure_enabled: bool = False  # true: sign-in with Azure
    auth_external_azure_client_id: CsvList = []  # OAuth client id(s); the first is used for sign-in, all are accepted as ID-token audience
    auth_external_azure_secret: str = ""  # OAuth client secret
    auth_external_azure_url: str = ""  # base URL override; empty: https://login.microsoftonline.com/common/v2.0 (OIDC issuer, tenant)
    auth_external_azure_scopes: CsvList = []  # scopes added to the provider's defaults on every sign-in
    auth_external_gitlab_enabled: bool = False  # true: sign-in with Gitlab
    auth_external_gitlab_client_id: CsvList = []  # OAuth client id(s); the first is used for sign-in, all are accepted as ID-token audience
    auth_external_gitlab_secret: str = ""  # OAuth client secret
    auth_external_gitlab_url: str = ""  # base URL override; empty: https://gitlab.com (self-hosted GitLab)
    auth_external_gitlab_scopes: CsvList = []  # scopes added to the provider's defaults on every sign-in
    auth_external_discord_enabled: bool = False  # true: sign-in with Discord
    auth_external_discord_client_id: CsvList = []  # OAuth client id(s); the first is used for sign-in, all are accepted as ID-token audience
    auth_external_discord_secret: str = ""  # OAuth client secret
    auth_external_discord_url: str = ""  # base URL override; empty: https://discord.com
    auth_external_discord_scopes: CsvList = []  # scopes added to the provider's defaults on every sign-in
    auth_external_oidc_provider: str = ""  # generic OIDC issuer: its name; signInWithOAuth({provider: "custom:<name>"}); empty: off
    auth_external_oidc_issuer: str = ""  # issuer URL or its discovery URL (<issuer>/.well-known/openid-configuration)
    auth_external_oidc_client_id: CsvList = []  # client id(s) at the generic OIDC issuer
    auth_external_oidc_secret: str = ""  # client secret at the generic OIDC issuer
    auth_external_oidc_scopes: CsvList = ["openid", "email", "profile"]  # scopes asked of the generic OIDC issuer

    # --- auth: MFA and passkeys -----------------------------------------------------
    auth_mfa_totp_enroll_enabled: bool = True  # users may enroll TOTP factors (GoTrue's default)
    auth_mfa_totp_verify_enabled: bool = True  # TOTP factors may be challenged and verified (step-up to aal2)
    auth_mfa_max_enrolled_factors: int = Field(10, ge=0)  # factors (any status) one user may have
    auth_mfa_max_verified_factors: int = Field(10, ge=0)  # verified factors one user may have
    auth_mfa_challenge_expiry: int = Field(300, ge=1)  # seconds a challenge stays valid (below 300 counts as 300, as GoTrue)
    auth_mfa_factor_expiry: int = Field(300, ge=1)  # seconds before an unverified, never-challenged factor is dropped (min 300)
    auth_rate_limit_mfa: int = Field(15, ge=0)  # MFA challenges (and, separately, verifications) per IP per minute; burst twice that
    auth_passkey_enabled: bool = False  # first-factor passkeys (WebAuthn) under /auth/v1/passkeys
    auth_passkey_max_per_user: int = Field(10, ge=1)  # passkeys one user may register
    auth_webauthn_rp_id: str = ""  # WebAuthn relying-party id; empty: the host of OWNBASE_SITE_URL
    auth_webauthn_rp_display_name: str = ""  # shown by authenticators; empty: the RP id
    auth_webauthn_rp_origins: str = ""  # comma-separated origins allowed in ceremonies; empty: OWNBASE_SITE_URL
    auth_webauthn_challenge_expiry: int = Field(300, ge=1)  # seconds a passkey challenge stays valid
    auth_rate_limit_passkey: int = Field(30, ge=0)  # passkey sign-in option requests per IP per window
    auth_sessions_allow_low_aal: int = Field(0, ge=0)  # seconds an aal1 session of a user with a verified factor lives (0: no cap)

    # --- auth: phone, hooks, captcha --------------------------------------------------
    auth_phone_enabled: bool = False  # true: phone + password and SMS codes (GOTRUE_EXTERNAL_PHONE_ENABLED)
    auth_sms_autoconfirm: bool = False  # true: phone sign-ups and changes need no SMS code
    auth_sms_provider: Literal["console", "sns", "twilio"] = "console"  # console (log + outbox), sns (Amazon SNS) or twilio
    auth_sms_otp_length: int = Field(6, ge=6, le=10)  # digits of SMS codes
    auth_sms_otp_ttl: int = Field(60, ge=10)  # seconds an SMS code stays valid (GOTRUE_SMS_OTP_EXP)
    auth_sms_max_frequency: int = Field(60, ge=0)  # minimum seconds between SMS codes to one user (GOTRUE_SMS_MAX_FREQUENCY)
    auth_sms_max_per_number_per_hour: int = Field(10, ge=0)  # SMS codes per phone number per hour, 0 disables
    auth_sms_max_per_hour: int = Field(30, ge=0)  # SMS codes per hour for the whole project (GOTRUE_RATE_LIMIT_SMS_SENT), 0 disables
    auth_sms_template: str = "Your code is {{ .Code }}"  # SMS text; {{ .Code }} is replaced by the code
    auth_sms_test_otp: str = ""  # fixed codes for test numbers, no SMS sent: <phone>:<code>,<phone>:<code> (GOTRUE_SMS_TEST_OTP)
    auth_sms_test_otp_valid_until: str = ""  # RFC 3339 time after which the test codes stop working; empty: forever
    auth_sms_sns_region: str = "us-east-1"  # Amazon SNS region
    auth_sms_sns_endpoint_url: str = ""  # SNS endpoint override (VPC endpoint, tests)
    auth_sms_sns_sender_id: str = ""  # optional SNS sender id (AWS.SNS.SMS.SenderID)
    auth_sms_twilio_account_sid: str = ""  # Twilio account SID
    auth_sms_twilio_auth_token: str = ""  # Twilio auth token
    auth_sms_twilio_message_service_sid: str = ""  # Twilio sender: a messaging service SID (MG...) or a phone number
    auth_sms_twilio_api_url: str = "https://api.twilio.com"  # Twilio API base URL (tests, proxies)
    auth_hook_custom_access_token_uri: str = ""  # pg-functions://postgres/<schema>/<function> or http(s) URL; empty: off
    auth_hook_custom_access_token_secrets: str = ""  # v1,whsec_... secrets for an HTTP hook, |-separated
    auth_hook_send_email_uri: str = ""  # send-email hook (replaces the mail backend); empty: off
    auth_hook_send_email_secrets: str = ""  # v1,whsec_... secrets for an HTTP hook, |-separated
    auth_hook_send_sms_uri: str = ""  # send-SMS hook (replaces the SMS provider); empty: off
    auth_hook_send_sms_secrets: str = ""  # v1,whsec_... secrets for an HTTP hook, |-separated
    auth_hook_password_verification_attempt_uri: str = ""  # password-verification-attempt hook; empty: off
    auth_hook_password_verification_attempt_secrets: str = ""  # v1,whsec_... secrets for an HTTP hook, |-separated
    auth_hook_mfa_verification_attempt_uri: str = ""  # MFA-verification-attempt hook; empty: off
    auth_hook_mfa_verification_attempt_secrets: str = ""  # v1,whsec_... secrets for an HTTP hook, |-separated
    auth_captcha_enabled: bool = False  # true: sign-up, password sign-in, OTP, recovery and resend need a CAPTCHA token
    auth_captcha_provider: Literal["hcaptcha", "turnstile"] = "hcaptcha"  # hcaptcha or turnstile
    auth_captcha_secret: str = ""  # the provider's secret key (required when enabled)
    auth_captcha_verify_url: str = ""  # siteverify URL override; empty: the provider's
    auth_captcha_timeout: float = Field(10.0, gt=0)  # seconds to wait for the verifier

    # --- mail -----------------------------------------------------------------------
    mail_backend: Literal["console", "smtp", "ses"] = "console"  # console (log + outbox), smtp or ses
    mail_from: str = "ownbase <noreply@localhost>"  # From header of every mail
    mail_templates_dir: str = ""  # folder whose templates override the bundled ones
    mail_smtp_host: str = "localhost"  # SMTP server
    mail_smtp_port: int = 587  # SMTP port
    mail_smtp_user: str = ""  # SMTP login (empty: no AUTH)
    mail_smtp_password: str = ""  # SMTP password
    mail_smtp_starttls: bool = False  # upgrade the SMTP connection with STARTTLS
    mail_smtp_ssl: bool = False  # connect with implicit TLS (port 465)
    mail_ses_region: str = "us-east-1"  # Amazon SES region
    mail_ses_endpoint_url: str = ""  # SES endpoint override (VPC endpoint, tests)
    mail_subject_confirmation: str = "Confirm your signup"  # subject of sign-up confirmation mails
    mail_subject_magiclink: str = "Your magic link"  # subject of magic link / code mails
    mail_subject_recovery: str = "Reset your password"  # subject of password recovery mails
    mail_subject_email_change: str = "Confirm email change"  # subject of email change mails
    mail_subject_invite: str = "You have been invited"  # subject of invitation mails

    # --- storage --------------------------------------------------------------------
    storage_backend: Literal["local", "s3"] = "local"  # local (files under the data dir) or s3
    storage_local_dir: str = ""  # empty: <data_dir>/storage
    storage_max_file_size: int = Field(50 * 1024 * 1024 * 1024, ge=1)  # global upload limit in bytes (buckets may set lower)
    storage_s3_bucket: str = ""  # the private S3 bucket holding every storage bucket
    storage_s3_region: str = "us-east-1"  # region of the S3 bucket
    storage_s3_endpoint_url: str = ""  # S3-compatible endpoint (empty: AWS)
    storage_s3_force_path_style: bool = False  # path-style addressing (MinIO, SeaweedFS)
    storage_s3_prefix: str = ""  # key prefix inside the S3 bucket
    storage_s3_sse: str = ""  # "", "AES256" or "aws:kms"
    storage_s3_kms_key_id: str = ""  # KMS key for OWNBASE_STORAGE_S3_SSE=aws:kms
    storage_s3_bucket_map: CsvList = []  # storage_bucket=s3_bucket pairs
    storage_download_redirect: Literal["none", "presigned", "cloudfront"] = "none"  # none (stream through ownbase), presigned (redirect to S3) or cloudfront
    storage_cloudfront_domain: str = ""  # CloudFront domain for cloudfront redirects
    storage_image_max_pixels: int = Field(50_000_000, ge=1)  # largest input image (pixels) a transformation accepts
    storage_tus_expiry: int = Field(3600, ge=60)  # seconds an abandoned resumable upload is kept

    # --- realtime -------------------------------------------------------------------
    realtime_heartbeat_timeout: int = Field(60, ge=1)  # seconds of client silence before a socket is closed
    realtime_max_channels_per_socket: int = Field(100, ge=1)  # joined channels per socket
    realtime_max_joins_per_second: int = Field(100, ge=1)  # joins per second per socket
    realtime_max_message_bytes: int = Field(3_000_000, ge=1)  # largest broadcast/presence payload
    realtime_max_pending_messages: int = Field(1000, ge=1)  # queued frames before a slow socket is dropped
    realtime_write_threads: int = Field(0, ge=0, le=64)  # threads writing a large fan-out; 0: one per CPU (at most 4), 1: the event loop only
    realtime_change_poll_ms: int = Field(100, ge=5)  # fallback poll of the change log (NOTIFY wakes it)
    realtime_process_ttl: int = Field(15, ge=2)  # seconds before a silent process's presence expires (Redis)

    # --- dashboard ------------------------------------------------------------------
    dashboard: bool = True  # on: the admin dashboard at /dashboard (accounts from `ownbase admin create`); off: not mounted
    dashboard_session_ttl: int = Field(12 * 3600, ge=60)  # seconds a dashboard login lasts
    dashboard_login_per_window: int = Field(10, ge=0)  # dashboard login attempts per IP (and per email) per window, 0 disables
    dashboard_login_window: int = Field(300, ge=1)  # seconds of the dashboard login buckets
    dashboard_log_size: int = Field(1000, ge=10, le=100_000)  # recent requests kept in memory per process for the logs page

    # --- bridge (ownbase in front of a live Supabase project; docs/migration/bridge.md) ----
    bridge_url: str = ""  # the live project's URL (https://<ref>.supabase.co); empty: bridge off
    bridge_anon_key: str = ""  # the live project's anon key, sent upstream in place of ours
    bridge_service_key: str = ""  # the live project's service_role key (mirror replays; in place of ours)
    bridge_jwt_secret: str = ""  # the live project's HS256 secret when it differs from ours: our user tokens are re-signed with it when forwarded
    bridge_jwks_url: str = ""  # JWKS whose tokens are accepted while auth is not local; empty: <bridge_url>/auth/v1/.well-known/jwks.json
    bridge_auth: Literal["upstream", "local", "fallback"] = "upstream"  # where /auth/v1 is served
    bridge_rest: Literal["upstream", "local", "fallback"] = "upstream"  # where /rest/v1 is served
    bridge_storage: Literal["upstream", "local", "fallback"] = "upstream"  # where /storage/v1 is served
    bridge_realtime: Literal["upstream", "local", "fallback"] = "upstream"  # where /realtime/v1 is served (fallback acts as local)
    bridge_tables: CsvList = []  # per-table overrides of OWNBASE_BRIDGE_REST, e.g. orders=upstream,public.profiles=local
    bridge_buckets: CsvList = []  # per-bucket overrides of OWNBASE_BRIDGE_STORAGE, e.g. avatars=local
    bridge_routes_file: str = ""  # optional file of more overrides, lines "table orders upstream" / "bucket avatars local"
    bridge_writes: Literal["upstream", "local", "mirror"] = "local"  # writes in local/fallback routes: forwarded (phase A), local (phase B) or local then mirrored upstream (the way back)
    bridge_connect_timeout: float = Field(5.0, gt=0)  # seconds to connect to the upstream
    bridge_read_timeout: float = Field(30.0, gt=0)  # seconds of upstream silence before a forwarded request fails (504)
    bridge_retries: int = Field(1, ge=0, le=10)  # extra attempts of an idempotent forward after a connection error
    bridge_mirror_max_backoff: int = Field(300, ge=1)  # seconds, cap of the mirror queue's exponential retry delay
    bridge_stats_flush_seconds: float = Field(2.0, gt=0)  # how often a process adds its bridge counters to PostgreSQL

    # --- operations and functions ---------------------------------------------------
    metrics_token: str = ""  # bearer token /metrics on the API port requires; metrics are off unless this or OWNBASE_METRICS_PORT is set
    metrics_port: int = Field(0, ge=0, le=65535)  # separate port serving /metrics without a token (0: none)
    metrics_host: str = "127.0.0.1"  # listen address of OWNBASE_METRICS_PORT
    jwt_next_private_key: str = ""  # PEM of the next signing key: published in JWKS, not yet signing (key rotation)
    jwt_previous_public_keys: str = ""  # JWKS (JSON or file path) of retired signing keys: verify-only until their tokens expire
    jwt_derivation_key: str = ""  # PEM the derived secrets (DB login password, signed URLs, OTP) come from; set to the first signing key when rotating through settings; empty: the signing key (or <data dir>/keys/jwt-<alg>.derive.pem)
    functions: str = ""  # /functions/v1 routes: JSON {"name": {"lambda"|"url"|"command": ..., "public": bool}} or a functions.toml path; empty: <data dir>/functions.toml if present
    functions_timeout: float = Field(150.0, gt=0)  # seconds a function may take to start answering (Supabase's wall-clock limit)
    functions_max_body_bytes: int = Field(6 * 1024 * 1024, ge=1024)  # largest request body passed to Lambda or a command (Lambda's synchronous payload limit); URL targets stream

    @field_validator(
        "cors_origins",
        "trusted_proxies",
        "db_schemas",
        "publishable_keys",
        "secret_keys",
        "auth_redirect_allow_list",
        "auth_cognito_client_ids",
        "auth_external_google_client_id",
        "auth_external_google_scopes",
        "auth_external_github_client_id",
        "auth_external_github_scopes",
        "auth_external_apple_client_id",
        "auth_external_apple_scopes",
        "auth_external_azure_client_id",
        "auth_external_azure_scopes",
        "auth_external_gitlab_client_id",
        "auth_external_gitlab_scopes",
        "auth_external_discord_client_id",
        "auth_external_discord_scopes",
        "auth_external_oidc_client_id",
        "auth_external_oidc_scopes",
        "storage_s3_bucket_map",
        "bridge_tables",
        "bridge_buckets",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("bridge_tables", "bridge_buckets")
    @classmethod
    def _bridge_overrides(cls, value: list[str]) -> list[str]:
        for item in value:
            name, sep, mode = item.partition("=")
            if not sep or not name.strip() or mode.strip().lower() not in ("upstream", "local", "fallback"):
                raise ValueError(f"{item!r}: expected name=upstream|local|fallback")
        return value

    @field_validator("database_url", "database_read_url")
    @classmethod
    def _pg_url(cls, value: str) -> str:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def api_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.jwt_issuer or f"{self.api_url}/auth/v1"


class SettingsError(Exception):
    """Raised with a message naming the offending OWNBASE_* variable(s)."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "OWNBASE_" + "_".join(str(p) for p in err["loc"][:1]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def cached_settings() -> Settings:
    return load_settings()

-- Auth (issue 13): TOTP replay guard and first-factor passkeys (WebAuthn).

-- The last TOTP time step accepted per factor: a code already used (or an older one) is refused,
-- even through a fresh challenge. Kept beside Supabase's mfa_factors so that table stays as dumped.
create table if not exists ownbase.auth_totp_steps (
  factor_id uuid primary key references auth.mfa_factors(id) on delete cascade,
  last_step bigint not null
);

-- Passkeys: discoverable credentials, one row per authenticator credential.
create table if not exists auth.webauthn_credentials (
  id uuid primary key,
  user_id uuid not null references auth.users(id) on delete cascade,
  credential_id bytea not null unique,
  public_key bytea not null,
  attestation_type text not null default 'none',
  aaguid uuid,
  sign_count bigint not null default 0,
  transports jsonb not null default '[]'::jsonb,
  backup_eligible boolean not null default false,
  backed_up boolean not null default false,
  friendly_name text not null default '',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_used_at timestamptz
);
create index if not exists webauthn_credentials_user_id_idx on auth.webauthn_credentials (user_id);

-- Ceremony challenges: one use each; registration ones are bound to a user.
create table if not exists auth.webauthn_challenges (
  id uuid primary key,
  user_id uuid references auth.users(id) on delete cascade,
  challenge_type text not null check (challenge_type in ('registration', 'authentication')),
  session_data jsonb not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index if not exists webauthn_challenges_expires_at_idx on auth.webauthn_challenges (expires_at);

grant all on auth.webauthn_credentials, auth.webauthn_challenges to service_role;

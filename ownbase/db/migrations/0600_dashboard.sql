-- ownbase dashboard: its own accounts (separate from auth.users), login sessions and saved SQL
-- snippets. Nothing here is reachable through /rest/v1: the schema is the owner's alone.
create schema if not exists ownbase_dashboard;
revoke all on schema ownbase_dashboard from public;

create table if not exists ownbase_dashboard.accounts (
  id uuid primary key default gen_random_uuid(),
  email text not null unique,
  password_hash text not null,
  totp_secret text,  -- base32 secret; null = TOTP off
  created_at timestamptz not null default now(),
  last_login_at timestamptz
);

-- Only a hash of the cookie value is stored: a read of this table does not yield a session.
create table if not exists ownbase_dashboard.sessions (
  token_hash text primary key,
  account_id uuid not null references ownbase_dashboard.accounts (id) on delete cascade,
  csrf_token text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index if not exists sessions_expires_idx on ownbase_dashboard.sessions (expires_at);

create table if not exists ownbase_dashboard.snippets (
  id uuid primary key default gen_random_uuid(),
  account_id uuid references ownbase_dashboard.accounts (id) on delete set null,
  name text not null,
  sql text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Auth (issue 3): ownbase's own bookkeeping for mail and per-address send budgets.

-- Every mail the console backend "sends" (and every mail of other backends, for auditing) lands
-- here; tests and `ownbase mail list` read it.
create table if not exists ownbase.mail_outbox (
  id bigserial primary key,
  created_at timestamptz not null default now(),
  backend text not null,
  to_address text not null,
  from_address text not null,
  subject text not null,
  text_body text not null,
  html_body text not null,
  kind text not null default '',
  status text not null default 'sent',
  error text
);
create index if not exists mail_outbox_to_idx on ownbase.mail_outbox (lower(to_address), id desc);

-- Send times of OTP / magic-link mails per address: the "N per address per hour" budget must
-- hold across processes, so it lives in Postgres.
create table if not exists ownbase.auth_email_sends (
  id bigserial primary key,
  address text not null,
  kind text not null,
  sent_at timestamptz not null default now()
);
create index if not exists auth_email_sends_address_idx on ownbase.auth_email_sends (address, sent_at desc);

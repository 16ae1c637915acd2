-- Auth (issue 13): SMS outbox and per-number SMS budgets.

-- Every SMS ownbase sends: the console backend keeps the text (a development SMS catcher, read by
-- tests and `ownbase sms list`); real providers keep only an audit line without the code.
create table if not exists ownbase.sms_outbox (
  id bigserial primary key,
  created_at timestamptz not null default now(),
  backend text not null,
  to_number text not null,
  body text not null,
  kind text not null default '',
  message_id text not null default '',
  status text not null default 'sent',
  error text
);
create index if not exists sms_outbox_to_idx on ownbase.sms_outbox (to_number, id desc);

-- Send times of SMS codes, keyed by a keyed hash of the number (never the number in clear): the
-- per-number and project-wide hourly budgets hold across processes.
create table if not exists ownbase.auth_sms_sends (
  id bigserial primary key,
  number_key text not null,
  sent_at timestamptz not null default now()
);
create index if not exists auth_sms_sends_key_idx on ownbase.auth_sms_sends (number_key, sent_at desc);
create index if not exists auth_sms_sends_time_idx on ownbase.auth_sms_sends (sent_at);

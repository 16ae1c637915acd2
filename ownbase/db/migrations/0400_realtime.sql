-- ownbase realtime: the change queue fed by triggers, the supabase_realtime publication that
-- tables opt into, and realtime.messages / realtime.topic() for private-channel authorisation.
-- Idempotent and runnable by a non-superuser owner (RDS master user): no replication slot, no
-- event trigger, no superuser-only setting is needed.

-- Tables opt in exactly as on Supabase: `alter publication supabase_realtime add table t`.
-- ownbase reads the publication's table list (pg_publication_tables) and keeps a capture trigger on
-- each of those tables; the publication itself carries no WAL consumer here.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

-- The change log. One row per captured row change, read by each delivery group's leader and
-- deleted once every live group has read past it.
create table if not exists ownbase.realtime_changes (
  id bigserial primary key,
  table_oid oid not null,
  schema_name text not null,
  table_name text not null,
  op text not null,
  record jsonb,
  old_record jsonb,
  commit_ts timestamptz not null default clock_timestamp(),
  -- The writing transaction's id: readers take every row whose transaction is older than their
  -- snapshot's xmin (so it has finished), window after window; nothing committed late is skipped.
  xid xid8 not null default pg_current_xact_id()
);
create index if not exists realtime_changes_xid on ownbase.realtime_changes (xid, id);
revoke all on ownbase.realtime_changes from public;

-- One read position per delivery group (all processes sharing one Redis, or one process without
-- Redis). The group's leader advances it; rows behind every live group's position are deleted.
create table if not exists ownbase.realtime_cursors (
  group_name text primary key,
  xid xid8 not null,
  id bigint not null default 0,
  updated_at timestamptz not null default now()
);
revoke all on ownbase.realtime_cursors from public;

-- The capture trigger function. SECURITY DEFINER so that any writing role (anon, authenticated,
-- a migration user) can enqueue without grants on ownbase's schema. One NOTIFY per transaction
-- (identical notifications collapse) wakes the leader's poller at once.
create or replace function ownbase.realtime_capture() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog
  as $$
begin
  insert into ownbase.realtime_changes(table_oid, schema_name, table_name, op, record, old_record)
  values (
    TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP,
    case when TG_OP = 'DELETE' then null else to_jsonb(NEW) end,
    case when TG_OP = 'INSERT' then null else to_jsonb(OLD) end
  );
  perform pg_notify('ownbase_realtime', '');
  return null;
end
$$;
revoke all on function ownbase.realtime_capture() from public;

-- realtime.topic(): the topic being authorised, read by RLS policies on realtime.messages.
create or replace function realtime.topic() returns text
  language sql stable
  as $$ select nullif(current_setting('realtime.topic', true), '')::text $$;
grant execute on function realtime.topic() to anon, authenticated, service_role;

-- realtime.messages: the table whose RLS policies authorise private channels, as on Supabase
-- (SELECT policies allow joining/receiving, INSERT policies allow sending). ownbase inserts a probe
-- row in a transaction it always rolls back, so nothing is stored here.
create table if not exists realtime.messages (
  id uuid not null default gen_random_uuid(),
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  primary key (id)
);
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to anon, authenticated;
grant all on realtime.messages to service_role;

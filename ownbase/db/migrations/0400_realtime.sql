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

-- The change queue. One row per captured row change; the leader process deletes what it has
-- handed to the bus, so the table stays small. `id` order within one table follows the order
-- in which rows were written; rows only become visible when their transaction commits.
create table if not exists ownbase.realtime_changes (
  id bigserial primary key,
  table_oid oid not null,
  schema_name text not null,
  table_name text not null,
  op text not null,
  record jsonb,
  old_record jsonb,
  commit_ts timestamptz not null default clock_timestamp()
);
revoke all on ownbase.realtime_changes from public;

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

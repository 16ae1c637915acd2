-- Dynamic tables (/db/v1): who owns which database (schema) and the column spec of each table.
-- Idempotent and runnable by a non-superuser owner. Only the owner connection touches these
-- tables; the request roles never see them.

create table if not exists ownbase.dynamic_databases (
  id text primary key,                 -- the PostgreSQL schema name (a validated identifier)
  owner_id uuid,                       -- the first user who created it; null = created by the service role
  created_at timestamptz not null default now()
);

create table if not exists ownbase.dynamic_tables (
  database_id text not null references ownbase.dynamic_databases(id) on delete cascade,
  name text not null,
  columns jsonb not null,              -- the normalised column spec as accepted by the API
  created_by uuid,
  created_at timestamptz not null default now(),
  primary key (database_id, name)
);

revoke all on ownbase.dynamic_databases, ownbase.dynamic_tables from public;

-- Keeps updated_at current on every dynamic table. SECURITY INVOKER is enough: it only touches NEW,
-- and a trigger calls it by oid, so the request roles need no USAGE on the ownbase schema.
create or replace function ownbase.dynamic_touch_updated_at() returns trigger
  language plpgsql
  as $$
  begin
    new.updated_at := now();
    return new;
  end
  $$;

grant execute on function ownbase.dynamic_touch_updated_at() to authenticated, service_role;

-- Bridge mode (issue 14): per-minute counters shared by every process, and the durable queue of
-- writes still to be mirrored to the upstream project.
create schema if not exists ownbase_bridge;
revoke all on schema ownbase_bridge from public;

create table if not exists ownbase_bridge.counters (
  minute timestamptz not null,
  service text not null,
  resource text not null,
  kind text not null,  -- local | upstream | fallback | lazy_copy | upstream_error | mirrored
  n bigint not null,
  primary key (minute, service, resource, kind)
);

create table if not exists ownbase_bridge.mirror_queue (
  id bigserial primary key,
  created_at timestamptz not null default now(),
  service text not null,
  resource text not null,
  method text not null,
  path text not null,       -- path and query string, as received
  headers jsonb not null,   -- the few headers that shape the write (content-type, prefer, ...)
  body bytea,               -- null: copy the current local object (storage uploads)
  attempts int not null default 0,
  next_attempt timestamptz not null default now(),
  last_error text,
  state text not null default 'pending'  -- pending | rejected (the upstream refused it with a 4xx)
);
create index if not exists mirror_queue_pending on ownbase_bridge.mirror_queue (id) where state = 'pending';

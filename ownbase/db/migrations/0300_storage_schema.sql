-- Storage: Supabase-shaped storage.buckets / storage.objects, path helpers, RLS and grants, plus
-- ownbase's private bookkeeping for blobs in flight (orphan sweeping) and TUS uploads.
-- Idempotent, runnable by a non-superuser owner.

create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,                      -- no FK to auth.users (Supabase dropped it too)
  owner_id text,
  public boolean not null default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  type text not null default 'STANDARD',
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  user_metadata jsonb
);
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
create index if not exists idx_objects_bucket_id_name on storage.objects (bucket_id, name collate "C");

-- Supabase's path helpers, so storage policies written for Supabase run unchanged.
create or replace function storage.foldername(name text) returns text[]
  language plpgsql immutable
  as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
  language plpgsql immutable
  as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
  language plpgsql immutable
  as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

create or replace function storage.update_updated_at_column() returns trigger
  language plpgsql
  as $$
begin
  new.updated_at = now();
  return new;
end
$$;

drop trigger if exists update_objects_updated_at on storage.objects;
create trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
  to anon, authenticated, service_role;

-- Like Supabase: the request roles may touch the tables, RLS decides. No policies on objects by
-- default; apps add their own. service_role bypasses RLS (or, where the server refused
-- BYPASSRLS, gets explicit allow-all policies).
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

do $$
begin
  if not exists (select 1 from pg_policies where schemaname = 'storage' and tablename = 'objects'
                 and policyname = 'ownbase_service_role_all') then
    create policy ownbase_service_role_all on storage.objects
      for all to service_role using (true) with check (true);
  end if;
  if not exists (select 1 from pg_policies where schemaname = 'storage' and tablename = 'buckets'
                 and policyname = 'ownbase_service_role_all') then
    create policy ownbase_service_role_all on storage.buckets
      for all to service_role using (true) with check (true);
  end if;
end
$$;

-- Blobs written but not (yet) referenced by a committed row, and blobs whose row is gone but
-- whose delete has not been confirmed. The sweeper deletes the unreferenced ones.
-- kind 'upload': a blob being written (its row may not exist yet); 'garbage': a blob whose row was
-- deleted, replaced or moved (recorded by the trigger below in the same transaction as the change).
create table if not exists ownbase.storage_pending_blobs (
  bucket_id text not null,
  name text not null,
  version text not null,
  kind text not null default 'upload',
  created_at timestamptz not null default now(),
  primary key (bucket_id, name, version)
);

-- Every row change that leaves a blob unreferenced records it, whoever made the change (the API,
-- PostgREST, SQL by hand), so the sweeper can remove the blob once the change has committed.
create or replace function storage.ownbase_record_garbage() returns trigger
  language plpgsql security definer set search_path = pg_catalog
  as $$
begin
  if old.version is not null and (tg_op = 'DELETE' or old.bucket_id is distinct from new.bucket_id
      or old.name is distinct from new.name or old.version is distinct from new.version) then
    insert into ownbase.storage_pending_blobs (bucket_id, name, version, kind)
    values (old.bucket_id, old.name, old.version, 'garbage')
    on conflict (bucket_id, name, version) do update set kind = 'garbage';
  end if;
  if tg_op = 'DELETE' then
    return old;
  end if;
  return new;
end
$$;

drop trigger if exists ownbase_record_garbage on storage.objects;
create trigger ownbase_record_garbage after update or delete on storage.objects
  for each row execute function storage.ownbase_record_garbage();

-- TUS resumable uploads in progress (state in Postgres so any process can take the next PATCH).
create table if not exists ownbase.storage_tus_uploads (
  id text primary key,
  bucket_id text not null,
  name text not null,
  version text not null,
  upload_length bigint,
  upload_offset bigint not null default 0,
  part_offsets bigint[] not null default '{}',
  content_type text not null default 'application/octet-stream',
  cache_control text not null default 'no-cache',
  user_metadata jsonb,
  upsert boolean not null default false,
  role text not null,
  claims jsonb not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);

-- ownbase foundation: request roles, schemas, Supabase-compatible auth helpers and grants.
-- Idempotent and runnable by a non-superuser owner (e.g. the RDS master user).

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    begin
      create role service_role nologin noinherit bypassrls;
    exception when insufficient_privilege then
      -- Managed servers may refuse BYPASSRLS to the master user; ownbase's own tables then
      -- carry explicit service_role policies instead.
      create role service_role nologin noinherit;
    end;
  end if;
end
$$;

create schema if not exists auth;
create schema if not exists storage;
create schema if not exists realtime;
create schema if not exists extensions;
create schema if not exists ownbase;

grant usage on schema public, auth, storage, realtime, extensions to anon, authenticated, service_role;

-- Extensions Supabase projects expect, where the server has them.
do $$
begin
  begin
    create extension if not exists pgcrypto with schema extensions;
  exception when others then
    raise notice 'pgcrypto is not available on this server';
  end;
  begin
    create extension if not exists "uuid-ossp" with schema extensions;
  exception when others then
    raise notice 'uuid-ossp is not available on this server; installing a shim';
  end;
end
$$;

do $$
begin
  if not exists (
    select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'extensions' and p.proname = 'uuid_generate_v4'
  ) then
    execute $f$create function extensions.uuid_generate_v4() returns uuid
      language sql volatile parallel safe as 'select gen_random_uuid()'$f$;
  end if;
end
$$;
grant execute on all functions in schema extensions to anon, authenticated, service_role;

-- Supabase's auth helpers: they read the claims the request scope sets.
create or replace function auth.jwt() returns jsonb
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $$;

create or replace function auth.uid() returns uuid
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $$;

create or replace function auth.role() returns text
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $$;

create or replace function auth.email() returns text
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
  to anon, authenticated, service_role;

-- Supabase's grants on public: the request roles may use what is created there; RLS restricts.
grant all on all tables in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;
grant all on all functions in schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- The search path Supabase gives its roles, so unqualified extension functions resolve.
do $$
begin
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
exception when insufficient_privilege then
  raise notice 'cannot set the database search_path (not the database owner)';
end
$$;

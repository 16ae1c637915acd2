-- Dynamic tables (issue 10): each database lives in its own schema `ownbase_db_<id>`, a namespace
-- the API controls, so a database id can never take a name the app or an extension needs later
-- (`billing`, `pgsodium`, ...). Databases made before get their schema renamed into it; one whose
-- prefixed name would exceed 63 bytes, or whose schema cannot be renamed, keeps its old name.

alter table ownbase.dynamic_databases add column if not exists schema_name text;

do $$
declare
  r record;
  target text;
begin
  for r in select id from ownbase.dynamic_databases where schema_name is null loop
    target := 'ownbase_db_' || r.id;
    if not exists (select 1 from pg_namespace where nspname = r.id) then
      update ownbase.dynamic_databases set schema_name = target where id = r.id;
    elsif octet_length(target) <= 63 and not exists (select 1 from pg_namespace where nspname = target) then
      begin
        execute format('alter schema %I rename to %I', r.id, target);
        update ownbase.dynamic_databases set schema_name = target where id = r.id;
      exception when others then
        update ownbase.dynamic_databases set schema_name = r.id where id = r.id;
      end;
    else
      update ownbase.dynamic_databases set schema_name = r.id where id = r.id;
    end if;
  end loop;
end
$$;

alter table ownbase.dynamic_databases alter column schema_name set not null;
create unique index if not exists dynamic_databases_schema_name_key on ownbase.dynamic_databases (schema_name);

-- Dynamic tables (issue 10): each new database lives in its own schema `ownbase_db_<id>`, a
-- namespace the API controls, so a database id can never take a name the app or an extension needs
-- later (`billing`, `pgsodium`, ...). Additive, so an older ownbase running beside this one (a
-- rolling deploy) keeps working: databases made before keep their schema (named by the id), and a
-- row an older process inserts without schema_name gets the id, the schema that process creates.
-- Moving an old database into the namespace is a manual step (docs/rest.md, "/db/v1").

alter table ownbase.dynamic_databases add column if not exists schema_name text;
update ownbase.dynamic_databases set schema_name = id where schema_name is null;

create or replace function ownbase.dynamic_databases_schema_name() returns trigger
language plpgsql as $$
begin
  if new.schema_name is null then
    new.schema_name := new.id;
  end if;
  return new;
end
$$;

drop trigger if exists dynamic_databases_schema_name on ownbase.dynamic_databases;
create trigger dynamic_databases_schema_name before insert on ownbase.dynamic_databases
  for each row execute function ownbase.dynamic_databases_schema_name();

create unique index if not exists dynamic_databases_schema_name_key on ownbase.dynamic_databases (schema_name);

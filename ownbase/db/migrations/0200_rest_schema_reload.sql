-- /rest/v1: tell every API process about DDL at once (the schema cache also polls a catalog
-- fingerprint, so servers where the owner may not create event triggers still catch up in ~1 s).
create or replace function ownbase.rest_notify_ddl() returns event_trigger
  language plpgsql
  as $$
  begin
    perform pg_notify('ownbase', 'reload schema');
  end
  $$;

do $$
begin
  if not exists (select 1 from pg_event_trigger where evtname = 'ownbase_rest_ddl') then
    begin
      create event trigger ownbase_rest_ddl on ddl_command_end
        execute function ownbase.rest_notify_ddl();
    exception when insufficient_privilege then
      raise notice 'event triggers need a superuser: /rest/v1 relies on NOTIFY and its fingerprint poll';
    end;
  end if;
end
$$;

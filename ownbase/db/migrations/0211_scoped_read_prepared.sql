-- The one-round-trip read of 0210, on a session-level prepared statement per query shape: a plain
-- EXECUTE parses, rewrites and plans the statement on every request (about two thirds of the
-- backend's CPU for a one-row read or a to-many embed); a prepared statement keeps its plan.
-- RLS stays exact: the statement is prepared after the role switch, and PostgreSQL's plan cache
-- rewrites it again whenever a later execution runs as another role (or after DDL).
--   stmt_name  the connection's name for this statement shape (chosen by ownbase, never by a client);
--   stmt  the statement text when this connection has not prepared stmt_name yet, else null;
--   evict  a name to DEALLOCATE first (the connection's bounded cache evicted it), or null.
-- Prepared statements outlive a failed transaction, so an existing stmt_name is replaced, not reused.
create or replace function ownbase.scoped_read_prepared(scope text[], stmt_name text, stmt text, args text[],
                                                        evict text)
  returns table(total bigint, page_total bigint, body text, response_headers text, response_status text)
  language plpgsql volatile
  as $$
  begin
    if scope[1] is null or scope[1] not in ('anon', 'authenticated', 'service_role') then
      raise exception 'role % is not a request role', scope[1] using errcode = '42501';
    end if;
    if evict is not null and exists (select 1 from pg_prepared_statements p where p.name = evict) then
      execute format('deallocate %I', evict);
    end if;
    perform set_config('role', scope[1], true),
            set_config('request.jwt.claims', scope[2], true),
            set_config('request.jwt.claim.sub', scope[3], true),
            set_config('request.jwt.claim.role', scope[1], true),
            set_config('request.method', scope[4], true),
            set_config('request.path', scope[5], true),
            set_config('request.headers', scope[6], true);
    if stmt is not null then
      if exists (select 1 from pg_prepared_statements p where p.name = stmt_name) then
        execute format('deallocate %I', stmt_name);
      end if;
      execute format('prepare %I(text[]) as %s', stmt_name, stmt);
    end if;
    execute format('execute %I(%L)', stmt_name, args) into total, page_total, body;
    response_headers := current_setting('response.headers', true);
    response_status := current_setting('response.status', true);
    return next;
  end
  $$;

revoke all on function ownbase.scoped_read_prepared(text[], text, text, text[], text) from public;

-- One round trip per read: switch into the request's role, set its claims and request GUCs, then
-- run the rendered statement. EXECUTE plans the statement after the role switch, so row-level
-- security applies exactly as with SET ROLE before a prepared statement; set_config(..., true) ends
-- with the statement's own transaction. SECURITY INVOKER on purpose: the caller (the authenticator)
-- can only switch into roles it is a member of. The statement is an aggregate (exactly one row);
-- response.headers / response.status come back as it left them (a function in a view or a
-- computed field may set them).
create or replace function ownbase.scoped_read(scope text[], stmt text, args text[])
  returns table(total bigint, page_total bigint, body text, response_headers text, response_status text)
  language plpgsql volatile
  as $$
  begin
    if scope[1] is null or scope[1] not in ('anon', 'authenticated', 'service_role') then
      raise exception 'role % is not a request role', scope[1] using errcode = '42501';
    end if;
    perform set_config('role', scope[1], true),
            set_config('request.jwt.claims', scope[2], true),
            set_config('request.jwt.claim.sub', scope[3], true),
            set_config('request.jwt.claim.role', scope[1], true),
            set_config('request.method', scope[4], true),
            set_config('request.path', scope[5], true),
            set_config('request.headers', scope[6], true);
    execute stmt into total, page_total, body using args;
    response_headers := current_setting('response.headers', true);
    response_status := current_setting('response.status', true);
    return next;
  end
  $$;

revoke all on function ownbase.scoped_read(text[], text, text[]) from public;

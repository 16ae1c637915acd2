-- Fixture for auth_mfa.test.mjs: a table only aal2 sessions may read (RLS on the JWT's aal claim).
drop table if exists public.js_mfa_notes;
create table public.js_mfa_notes (id int primary key, body text not null);
alter table public.js_mfa_notes enable row level security;
create policy aal2_only on public.js_mfa_notes for select to authenticated
  using ((auth.jwt() ->> 'aal') = 'aal2');
grant select on public.js_mfa_notes to authenticated;
insert into public.js_mfa_notes values (1, 'launch codes');

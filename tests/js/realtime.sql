-- Fixture of realtime.test.mjs (applied as the owner before the file runs).
create table if not exists public.rt_js (
  id bigserial primary key,
  body text,
  kind text,
  is_public boolean not null default false
);
alter table public.rt_js enable row level security;
drop policy if exists rt_js_public on public.rt_js;
create policy rt_js_public on public.rt_js for select to anon, authenticated using (is_public);
do $$
begin
  if not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'rt_js') then
    alter publication supabase_realtime add table public.rt_js;
  end if;
end
$$;
notify pgrst, 'reload schema';

-- Fixture schema of the realtime tests (applied once per session as the database owner).
create table if not exists public.rt_notes (
  id bigserial primary key,
  owner uuid,
  body text,
  is_public boolean not null default false
);
alter table public.rt_notes enable row level security;
drop policy if exists rt_notes_read on public.rt_notes;
create policy rt_notes_read on public.rt_notes for select to anon, authenticated
  using (is_public or owner = auth.uid());
drop policy if exists rt_notes_write on public.rt_notes;
create policy rt_notes_write on public.rt_notes for all to authenticated
  using (owner = auth.uid()) with check (owner = auth.uid());

create table if not exists public.rt_items (
  id bigserial primary key,
  name text,
  qty integer,
  price numeric,
  done boolean,
  tags text[],
  meta jsonb,
  created_at timestamptz default now()
);
alter table public.rt_items replica identity full;

create table if not exists public.rt_keys (
  id integer primary key,
  label text,
  secret text
);
revoke select on public.rt_keys from anon;
grant select (id, label) on public.rt_keys to anon;

create table if not exists public.rt_seq (
  id bigserial primary key,
  n integer not null
);

create table if not exists public.rt_off (
  id bigserial primary key,
  v text
);

do $$
begin
  if not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'rt_notes') then
    alter publication supabase_realtime add table public.rt_notes, public.rt_items, public.rt_keys, public.rt_seq;
  end if;
end
$$;

-- Private channels: authenticated users may join/receive topics starting with "room-ok",
-- and may send only on "room-ok-write".
drop policy if exists rt_private_read on realtime.messages;
create policy rt_private_read on realtime.messages for select to authenticated
  using (realtime.topic() like 'room-ok%');
drop policy if exists rt_private_write on realtime.messages;
create policy rt_private_write on realtime.messages for insert to authenticated
  with check (realtime.topic() = 'room-ok-write');

"""`ownbase gen types typescript`: the output has supabase's shape and type-checks with
`createClient<Database>()` under the real TypeScript compiler (and catches wrong code)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import create_database
from tests.tables.test_migrate import execute, run_cli

JS = Path(__file__).resolve().parents[1] / "js"
TSC = JS / "node_modules" / "typescript" / "bin" / "tsc"

SCHEMA = """
create type public.mood as enum ('happy', 'sad', 'so-so');
create type public.pair as (a int, b text);
create table public.users (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  mood public.mood,
  tags text[],
  meta jsonb,
  score numeric(10,2) default 0,
  "weird name" int
);
create table public.posts (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.users(id),
  title text not null,
  body text,
  created_at timestamptz not null default now(),
  words int generated always as (length(title)) stored
);
create table public.profiles (user_id uuid primary key references public.users(id), bio text);
create view public.post_titles as select id, title from public.posts;
create view public.post_authors as select id, user_id, title from public.posts;
create function public.add(a int, b int default 1) returns int language sql immutable as 'select a + b';
create function public.user_posts(uid uuid) returns setof public.posts language sql stable
  as 'select * from public.posts where user_id = uid';
create function public.stats() returns table(n bigint, m text) language sql as 'select 1::bigint, ''x''';
create function public.touch() returns void language sql as 'select 1';
create function public.bump(x int) returns int language sql as 'select x + 1';
create function public.bump(x text) returns text language sql as 'select x || ''!''';
create schema other;
create table other.things (id int primary key, label text);
"""

GOOD = """
import { createClient } from '@supabase/supabase-js'
import type { Database, Tables, TablesInsert, TablesUpdate, Enums, CompositeTypes } from './database.types'
import { Constants } from './database.types'

const sb = createClient<Database>('http://localhost:54321', 'anon-key')

export async function useIt() {
  const { data } = await sb.from('posts').select('id, title, users(name, mood)').eq('id', 1)
  const title: string = data![0].title
  const id: number = data![0].id
  const mood: 'happy' | 'sad' | 'so-so' | null | undefined = data![0].users?.mood
  const row: TablesInsert<'posts'> = { title: 'a', user_id: '00000000-0000-0000-0000-000000000000' }
  await sb.from('posts').insert(row)
  const patch: TablesUpdate<'users'> = { 'weird name': 3 }
  await sb.from('users').update(patch).eq('id', 'x')
  const profile = await sb.from('profiles').select('bio, users(name)').single()
  const owner: string | undefined = profile.data?.users?.name
  const user: Tables<'users'> | null = null
  const view = await sb.from('post_titles').select('*')
  const maybeTitle: string | null | undefined = view.data?.[0]?.title
  const m: Enums<'mood'> = 'so-so'
  const p: CompositeTypes<'pair'> = { a: 1, b: null }
  const sum = await sb.rpc('add', { a: 1 })
  const n: number | null = sum.data
  const posts = await sb.rpc('user_posts', { uid: 'u' })
  const firstTitle: string | undefined = posts.data?.[0]?.title
  const stats = await sb.rpc('stats')
  const count: number | undefined = stats.data?.[0]?.n
  const bumped = await sb.rpc('bump', { x: 1 })  // an overloaded function
  const fromView = await sb.from('post_authors').select('title, users(name)')  // FK inferred for the view
  const viewAuthor: string | undefined = fromView.data?.[0]?.users?.name
  const moods: readonly string[] = Constants.public.Enums.mood
  const other = await sb.schema('other').from('things').select('label')
  const label: string | null | undefined = other.data?.[0]?.label
  return [title, id, mood, owner, user, maybeTitle, m, p, n, firstTitle, count, moods, label, bumped, viewAuthor]
}
"""

# Each line must be rejected by the compiler: the types are not just `any`.
BAD = {
    "wrong column type": "const t: number = (await sb.from('posts').select('title')).data![0].title",
    "unknown table": "await sb.from('nope').select('*')",
    "unknown column on insert": "await sb.from('posts').insert({ title: 'a', user_id: 'u', nope: 1 })",
    "missing required insert column": "await sb.from('posts').insert({ body: 'no title' })",
    "generated column written": "await sb.from('posts').insert({ title: 'a', user_id: 'u', words: 3 })",
    "bad enum label": "const m: Database['public']['Enums']['mood'] = 'angry'",
    "wrong rpc argument": "await sb.rpc('add', { a: 'one' })",
}


@pytest.fixture(scope="module")
def typed_db(pg_admin_url: str) -> str:
    url = create_database(pg_admin_url, "ownbase_types")
    execute(url, SCHEMA)
    return url


@pytest.fixture(scope="module")
def generated(typed_db: str) -> str:
    out = run_cli("gen", "types", "typescript", "--db-url", typed_db, "--schema", "public", "--schema", "other")
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_output_has_supabase_shape(generated: str) -> None:
    text = generated
    assert text.startswith("export type Json =")
    assert "export type Database = {" in text
    for needle in (
        "    Tables: {", "    Views: {", "    Functions: {", "    Enums: {", "    CompositeTypes: {",
        '      mood: "happy" | "sad" | "so-so"',
        "          id?: never",  # identity always: never written
        "          words?: never",  # generated column
        '          "weird name": number | null',
        '            foreignKeyName: "posts_user_id_fkey"',
        "            isOneToOne: true",  # profiles.user_id is its primary key
        '            referencedRelation: "users"',
        '          mood: Database["public"]["Enums"]["mood"] | null',
        '        Returns: Database["public"]["Tables"]["posts"]["Row"][]',
        "          b?: number",  # argument with a default
        "        Returns: undefined",  # void
        "export type Tables<", "export type TablesInsert<", "export type TablesUpdate<",
        "export type Enums<", "export type CompositeTypes<", "export const Constants = {",
        "  other: {", "      things: {",
    ):
        assert needle in text, needle
    assert "      bump:\n        | {\n            Args: {" in text  # overloads become a union


def test_unknown_schema_is_an_error(typed_db: str) -> None:
    out = run_cli("gen", "types", "typescript", "--db-url", typed_db, "--schema", "missing_schema")
    assert out.returncode == 2 and "missing_schema" in out.stderr


def _tsc(folder: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node and TSC.exists(), "node and tests/js's typescript dev dependency are required (npm ci in tests/js)"
    return subprocess.run(
        [node, str(TSC), "--noEmit", "--strict", "--target", "ES2022", "--module", "ESNext",
         "--moduleResolution", "Bundler", "--skipLibCheck", *files],
        cwd=folder, capture_output=True, text=True, timeout=300)


def test_generated_types_type_check_with_create_client(generated: str, tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(JS / "node_modules")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "database.types.ts").write_text(generated)
    (tmp_path / "good.ts").write_text(GOOD)
    header = ("import { createClient } from '@supabase/supabase-js'\n"
              "import type { Database } from './database.types'\n"
              "const sb = createClient<Database>('http://localhost:54321', 'anon-key')\n")
    names = []
    for i, line in enumerate(BAD.values()):
        name = f"bad{i}.ts"
        (tmp_path / name).write_text(header + f"export async function f() {{\n  {line}\n}}\n")
        names.append(name)
    good = _tsc(tmp_path, ["good.ts"])
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _tsc(tmp_path, names)
    assert bad.returncode != 0
    for name, label in zip(names, BAD):
        assert f"{name}(" in bad.stdout, f"the compiler accepted: {label}\n{bad.stdout}"

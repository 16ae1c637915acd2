// ownbase-env: OWNBASE_DB_SCHEMAS=rest_js,public
// supabase-js against /rest/v1: the calls apps make most, checked against PostgREST's answers.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { client, admin, URL, ANON_KEY } from './helpers.mjs';

const db = () => admin().schema('rest_js');
const anon = () => client().schema('rest_js');

before(async () => {
  // the fixture's NOTIFY reloads the schema cache asynchronously: wait until the table answers
  for (let i = 0; i < 100; i++) {
    const { error } = await db().from('reviews').select('id').limit(1);
    if (!error) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('rest_js never appeared in the schema cache');
});

test('select with embeds, filters, order and count', async () => {
  const { data, error, count, status } = await db()
    .from('books')
    .select('id, title, author:authors(name), reviews(stars)', { count: 'exact' })
    .contains('genres', ['scifi'])
    .gte('year', 1970)
    .order('year', { ascending: false })
    .order('stars', { referencedTable: 'reviews', ascending: true });
  assert.equal(error, null);
  assert.equal(status, 200);
  assert.equal(count, 2);
  assert.deepEqual(data.map((b) => b.id), [4, 1]);
  assert.deepEqual(data[1].author, { name: 'Le Guin' });
  assert.deepEqual(data[1].reviews, [{ stars: 4 }, { stars: 5 }]);
});

test('inner join filter, or, in, ilike, json path, range', async () => {
  let r = await db().from('authors').select('name, books!inner(title)').eq('books.title', 'Dune');
  assert.deepEqual(r.data, [{ name: 'Herbert', books: [{ title: 'Dune' }] }]);
  r = await db().from('books').select('id').or('year.lt.1966,title.ilike.*kin*').order('id');
  assert.deepEqual(r.data.map((x) => x.id), [3, 4]);
  r = await db().from('books').select('id').in('id', [2, 3]).not('title', 'eq', 'Dune');
  assert.deepEqual(r.data, [{ id: 2 }]);
  r = await db().from('books').select('title, pages:info->pages').gt('info->pages', 400);
  assert.deepEqual(r.data, [{ title: 'Dune', pages: 412 }]);
  r = await db().from('books').select('id', { count: 'exact' }).order('id').range(1, 2);
  assert.equal(r.status, 206);
  assert.equal(r.count, 4);
  assert.deepEqual(r.data.map((x) => x.id), [2, 3]);
  r = await db().from('books').select('*', { count: 'exact', head: true });
  assert.equal(r.count, 4);
  assert.equal(r.data, null);
});

test('single, maybeSingle and csv', async () => {
  let r = await db().from('authors').select('name').eq('id', 2).single();
  assert.deepEqual(r.data, { name: 'Herbert' });
  r = await db().from('authors').select('name').single();
  assert.equal(r.error.code, 'PGRST116');
  assert.equal(r.status, 406);
  r = await db().from('authors').select('name').eq('id', 99).maybeSingle();
  assert.equal(r.error, null);
  assert.equal(r.data, null);
  r = await db().from('authors').select('id,name').order('id').limit(1).csv();
  assert.equal(r.data, 'id,name\n1,"Le Guin"');
});

test('insert, upsert, update, delete with select', async () => {
  let r = await db().from('authors').insert({ id: 10, name: 'Jemisin' }).select().single();
  assert.equal(r.status, 201);
  assert.deepEqual(r.data, { id: 10, name: 'Jemisin' });
  r = await db().from('authors').insert([{ id: 11, name: 'Chiang' }, { id: 12, name: 'Liu' }]);
  assert.equal(r.status, 201);
  assert.equal(r.data, null);
  r = await db().from('authors').upsert({ id: 11, name: 'Ted Chiang' }).select();
  assert.deepEqual(r.data, [{ id: 11, name: 'Ted Chiang' }]);
  r = await db().from('authors').upsert([{ id: 12, name: 'ignored' }], { ignoreDuplicates: true }).select();
  assert.deepEqual(r.data, []);
  r = await db().from('books').insert({ author_id: 10, title: 'The Fifth Season' }).select('id, title, authors(name)');
  assert.ok(r.data[0].id > 100);
  assert.deepEqual(r.data[0].authors, { name: 'Jemisin' });
  r = await db().from('authors').update({ name: 'N. K. Jemisin' }).eq('id', 10).select('name');
  assert.deepEqual(r.data, [{ name: 'N. K. Jemisin' }]);
  r = await db().from('books').delete().eq('author_id', 10);
  assert.equal(r.status, 204);
  r = await db().from('authors').delete().in('id', [10, 11, 12]).select('id');
  assert.deepEqual(r.data.map((x) => x.id).sort(), [10, 11, 12]);
  r = await db().from('authors').insert({ id: 1, name: 'dup' });
  assert.equal(r.status, 409);
  assert.equal(r.error.code, '23505');
  r = await db().from('authors').insert({ id: 20, nope: 1 });
  assert.equal(r.error.code, 'PGRST204');
});

test('rpc both ways', async () => {
  let r = await db().rpc('book_count', { author: 1 });
  assert.equal(r.data, 2);
  r = await db().rpc('book_count', { author: 2 }, { get: true });
  assert.equal(r.data, 1);
  r = await db().rpc('books_since', { y: 1970 }).select('title').order('title');
  assert.deepEqual(r.data, [{ title: 'Kindred' }, { title: 'The Dispossessed' }]);
  r = await db().rpc('nope', {});
  assert.equal(r.error.code, 'PGRST202');
});

test('range filters match PostgreSQL (rangeGte is nxl, rangeLte is nxr)', async () => {
  const ids = async (q) => (await q).data.map((x) => x.id);
  const t = () => db().from('spans').select('id').order('id');
  assert.deepEqual(await ids(t().rangeGte('r', '[3,6)')), [2, 3]); // r &> [3,6): lower bound >= 3
  assert.deepEqual(await ids(t().rangeLte('r', '[3,6)')), [1, 4]); // r &< [3,6): upper bound <= 6
  assert.deepEqual(await ids(t().rangeGt('r', '[3,6)')), []);
  assert.deepEqual(await ids(t().rangeLt('r', '[3,6)')), [4]);
  assert.deepEqual(await ids(t().rangeAdjacent('r', '[3,5)')), [2, 4]);
  assert.deepEqual(await ids(t().overlaps('r', '[4,5)')), [1, 3]);
});

test('computed relationships and counted rpc', async () => {
  const { data, error } = await db().from('books').select('title, author_of(name), top_reviews(stars)')
    .in('id', [1, 2]).order('id');
  assert.equal(error, null);
  assert.deepEqual(data, [
    { title: 'The Dispossessed', author_of: { name: 'Le Guin' }, top_reviews: [{ stars: 5 }] },
    { title: 'A Wizard of Earthsea', author_of: { name: 'Le Guin' }, top_reviews: [] },
  ]);
  const r = await db().rpc('books_since', { y: 1960 }, { count: 'exact' }).select('id').range(0, 1);
  assert.equal(r.count, 4);
  assert.deepEqual(r.data.map((x) => x.id), [1, 2]);
});

test('errors and RLS for anon', async () => {
  let r = await anon().from('private_notes').select('*');
  assert.deepEqual(r.data, []);
  r = await anon().from('private_notes').insert({ text: 'x' });
  assert.equal(r.status, 401);
  assert.equal(r.error.code, '42501');
  r = await anon().from('missing_table').select('*');
  assert.equal(r.status, 404);
  assert.equal(r.error.code, 'PGRST205');
  r = await anon().from('books').select('id,').limit(1);
  assert.equal(r.status, 400);
  assert.equal(r.error.code, 'PGRST100');
  const res = await fetch(`${URL}/rest/v1/books`, {
    headers: { apikey: ANON_KEY, Authorization: 'Bearer not.a.jwt', 'Accept-Profile': 'rest_js' },
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).code, 'PGRST301');
  assert.match(res.headers.get('www-authenticate'), /^Bearer error="invalid_token"/);
});

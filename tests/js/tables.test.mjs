// The dynamic-table API (/db/v1) from supabase-js: real users signed in through /auth/v1, tables
// created over HTTP, rows read and written with postgrest-js pointed at a table's /rows endpoint.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { PostgrestClient } from '@supabase/postgrest-js';
import { client, admin, URL, ANON_KEY, SERVICE_KEY, uniqueEmail } from './helpers.mjs';

const DB = `js_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
const users = {};

async function signIn(tag) {
  const email = uniqueEmail(tag);
  const password = 'correct-horse-battery';
  const created = await admin().auth.admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null, JSON.stringify(created.error));
  const c = client();
  const { data, error } = await c.auth.signInWithPassword({ email, password });
  assert.equal(error, null, JSON.stringify(error));
  return { id: data.user.id, token: data.session.access_token };
}

function api(token, path, init = {}) {
  return fetch(`${URL}/db/v1${path}`, {
    ...init,
    headers: { apikey: ANON_KEY, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers || {}) },
  });
}

// postgrest-js against one table's rows endpoint: `.from('rows')` → /db/v1/<db>/tables/<t>/rows
function rows(token, table) {
  return new PostgrestClient(`${URL}/db/v1/${DB}/tables/${table}`, {
    headers: { apikey: ANON_KEY, Authorization: `Bearer ${token}` },
  });
}

before(async () => {
  users.alice = await signIn('alice');
  users.bob = await signIn('bob');
  const res = await api(users.alice.token, `/${DB}/tables`, {
    method: 'POST',
    body: JSON.stringify({
      name: 'tasks',
      columns: [
        { name: 'title', type: 'text', nullable: false },
        { name: 'points', type: 'integer', default: 1 },
        { name: 'labels', type: 'text[]' },
        { name: 'due', type: 'date' },
      ],
    }),
  });
  assert.equal(res.status, 201, await res.clone().text());
});

test('the creator lists the table; another user is refused with a PostgREST-shaped 403', async () => {
  const mine = await api(users.alice.token, `/${DB}/tables`);
  assert.equal(mine.status, 200);
  const tables = await mine.json();
  assert.deepEqual(tables.map((t) => t.name), ['tasks']);
  assert.deepEqual(tables[0].columns.map((c) => c.name),
    ['id', 'owner_id', 'created_at', 'updated_at', 'title', 'points', 'labels', 'due']);
  const theirs = await api(users.bob.token, `/${DB}/tables`);
  assert.equal(theirs.status, 403);
  const body = await theirs.json();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'details', 'hint', 'message']);
  assert.equal(body.code, '42501');
});

test('insert, filter, order, count and update rows with postgrest-js', async () => {
  const t = rows(users.alice.token, 'tasks');
  const ins = await t.from('rows').insert([
    { title: 'write docs', points: 3, labels: ['docs'] },
    { title: 'fix bug', points: 5, due: '2030-01-31' },
    { title: 'coffee' },
  ]).select('id, title, points, owner_id');
  assert.equal(ins.error, null, JSON.stringify(ins.error));
  assert.equal(ins.status, 201);
  assert.equal(ins.data.length, 3);
  assert.ok(ins.data.every((r) => r.owner_id === users.alice.id));
  assert.equal(ins.data.find((r) => r.title === 'coffee').points, 1); // column default

  const big = await t.from('rows').select('title, points').gte('points', 3).order('points', { ascending: false });
  assert.equal(big.error, null);
  assert.deepEqual(big.data, [{ title: 'fix bug', points: 5 }, { title: 'write docs', points: 3 }]);

  const counted = await t.from('rows').select('*', { count: 'exact', head: true }).ilike('title', '%o%');
  assert.equal(counted.count, 2); // 'write docs' and 'coffee'

  const arr = await t.from('rows').select('title').contains('labels', ['docs']);
  assert.deepEqual(arr.data, [{ title: 'write docs' }]);

  const id = ins.data.find((r) => r.title === 'coffee').id;
  const upd = await t.from(`rows/${id}`).update({ points: 8 }).select('title, points');
  assert.equal(upd.error, null, JSON.stringify(upd.error));
  assert.deepEqual(upd.data, { title: 'coffee', points: 8 });

  const one = await t.from(`rows/${id}`).select('points').single();
  assert.deepEqual(one.data, { points: 8 });
});

test('invalid values are a 400 naming the field', async () => {
  const t = rows(users.alice.token, 'tasks');
  const bad = await t.from('rows').insert({ title: 'x', points: 'many' });
  assert.equal(bad.status, 400);
  assert.equal(bad.error.code, '22P02');
  assert.match(bad.error.message, /'points'/);
  const missing = await t.from('rows').insert({ points: 2 });
  assert.equal(missing.status, 400);
  assert.match(missing.error.message, /'title'.*required/);
  const date = await t.from('rows').insert({ title: 'x', due: 'next tuesday' });
  assert.equal(date.status, 400);
  assert.match(date.error.message, /'due'/);
});

test("another user can neither read nor write the owner's rows; the service role can", async () => {
  const bob = await rows(users.bob.token, 'tasks').from('rows').select('*');
  assert.equal(bob.status, 403);
  const service = new PostgrestClient(`${URL}/db/v1/${DB}/tables/tasks`, {
    headers: { apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}` },
  });
  const all = await service.from('rows').select('title').order('title');
  assert.equal(all.error, null);
  assert.equal(all.data.length, 3);
  const gift = await service.from('rows').insert({ title: 'for bob', owner_id: users.bob.id }).select('owner_id');
  assert.equal(gift.error, null, JSON.stringify(gift.error));
  // RLS: the row belongs to bob now, so alice (who owns the database) does not see it.
  const mine = await rows(users.alice.token, 'tasks').from('rows').select('title').eq('title', 'for bob');
  assert.deepEqual(mine.data, []);
});

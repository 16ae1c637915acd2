// ownbase-env: OWNBASE_JWT_SECRET=storage-js-rls-legacy-secret-0123456789abcdef
// RLS through supabase-js: user sessions are HS256 JWTs signed with the migrated project's legacy
// secret (which ownbase accepts next to its own keys), so this file can mint users on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { admin, client, ANON_KEY } from './helpers.mjs';

const SECRET = 'storage-js-rls-legacy-secret-0123456789abcdef';
const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
function userToken(sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, role: 'authenticated', aud: 'authenticated', iat: now, exp: now + 600 });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const asUser = (sub) => client(ANON_KEY, { global: { headers: { Authorization: `Bearer ${userToken(sub)}` } } });

test('each user writes and reads only under their own folder', async () => {
  const bucket = `jsrls-priv-${Date.now()}`;
  assert.equal((await admin().storage.createBucket(bucket)).error, null);
  const a = randomUUID();
  const b = randomUUID();
  const A = asUser(a).storage.from(bucket);
  const B = asUser(b).storage.from(bucket);
  let { error } = await A.upload(`${a}/note.txt`, new Blob(['A']));
  assert.equal(error, null);
  ({ error } = await A.upload(`${b}/note.txt`, new Blob(['intruder'])));
  assert.equal(error.statusCode, '403');
  assert.match(error.message, /row-level security/);
  ({ error } = await B.download(`${a}/note.txt`));
  assert.ok(error);
  assert.equal(await (await A.download(`${a}/note.txt`)).data.text(), 'A');
  const { data: removed } = await B.remove([`${a}/note.txt`]);
  assert.deepEqual(removed, []);
  assert.deepEqual((await A.list()).data.map((e) => e.name), [a]);
  assert.deepEqual((await B.list()).data, []);
  const anon = client().storage.from(bucket);
  ({ error } = await anon.upload(`${a}/anon.txt`, new Blob(['x'])));
  assert.equal(error.statusCode, '403');
});

test('a public bucket is readable by anon, a private one is not', async () => {
  const pub = `jsrls-pub-${Date.now()}`;
  const priv = `jsrls-priv2-${Date.now()}`;
  await admin().storage.createBucket(pub, { public: true });
  await admin().storage.createBucket(priv);
  const a = randomUUID();
  await asUser(a).storage.from(pub).upload(`${a}/p.txt`, new Blob(['public']));
  await asUser(a).storage.from(priv).upload(`${a}/p.txt`, new Blob(['private']));
  const anon = client();
  assert.equal(await (await anon.storage.from(pub).download(`${a}/p.txt`)).data.text(), 'public');
  const res = await fetch(anon.storage.from(pub).getPublicUrl(`${a}/p.txt`).data.publicUrl);
  assert.equal(await res.text(), 'public');
  const { error } = await anon.storage.from(priv).download(`${a}/p.txt`);
  assert.ok(error);
  const r2 = await fetch(anon.storage.from(priv).getPublicUrl(`${a}/p.txt`).data.publicUrl);
  assert.equal(r2.status, 400);
});

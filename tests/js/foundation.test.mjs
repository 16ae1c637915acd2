import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, URL, ANON_KEY } from './helpers.mjs';

test('createClient reaches /auth/v1/health and /auth/v1/settings', async () => {
  const supabase = client();
  assert.ok(supabase.auth);
  for (const path of ['/auth/v1/health', '/auth/v1/settings']) {
    const res = await fetch(URL + path, { headers: { apikey: ANON_KEY } });
    assert.equal(res.status, 200, path);
    const body = await res.json();
    assert.equal(typeof body, 'object');
  }
  const settings = await (await fetch(URL + '/auth/v1/settings', { headers: { apikey: ANON_KEY } })).json();
  assert.equal(settings.external.email, true);
  assert.equal(settings.mailer_autoconfirm, false);
});

test('a fresh client has no session', async () => {
  const { data, error } = await client().auth.getSession();
  assert.equal(error, null);
  assert.equal(data.session, null);
});

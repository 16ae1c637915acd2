// supabase-js through an ownbase bridge in fallback mode (run by tests/bridge/test_phases.py, not by
// tests/e2e/test_js.py: it needs the bridge's upstream). The user, row and object exist only upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, admin } from './helpers.mjs';

const { BRIDGE_EMAIL, BRIDGE_PASSWORD, BRIDGE_USER_ID, BRIDGE_OBJECT } = process.env;

test('sign-in of an upstream-only user through the bridge gives a local session', async () => {
  const supabase = client();
  const { data, error } = await supabase.auth.signInWithPassword({ email: BRIDGE_EMAIL, password: BRIDGE_PASSWORD });
  assert.equal(error, null);
  assert.equal(data.user.id, BRIDGE_USER_ID);
  const { data: me, error: meError } = await supabase.auth.getUser();
  assert.equal(meError, null);
  assert.equal(me.user.email, BRIDGE_EMAIL);
});

test('a table not migrated is read from the upstream', async () => {
  const { data, error } = await admin().from('legacy').select('note');
  assert.equal(error, null);
  assert.deepEqual(data, [{ note: 'only upstream' }]);
});

test('an object only upstream downloads through the bridge', async () => {
  const { data, error } = await admin().storage.from('docs').download(BRIDGE_OBJECT);
  assert.equal(error, null);
  assert.equal(await data.text(), 'from supabase-js');
});

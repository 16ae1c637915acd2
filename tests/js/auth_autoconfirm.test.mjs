// ownbase-env: OWNBASE_AUTH_AUTOCONFIRM=true OWNBASE_AUTH_ANONYMOUS_SIGNINS=true OWNBASE_AUTH_REFRESH_REUSE_INTERVAL=1
// supabase-js against ownbase with autoconfirm and anonymous sign-ins on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, uniqueEmail } from './helpers.mjs';
import { lastMail, codeOf } from './auth_mail.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('sign-up returns a session with Supabase claims', async () => {
  const sb = client();
  const email = uniqueEmail('js-auto');
  const { data, error } = await sb.auth.signUp({ email, password: 'secret123', options: { data: { plan: 'pro' } } });
  assert.equal(error, null);
  assert.ok(data.session.access_token && data.session.refresh_token);
  assert.equal(data.session.expires_in, 900);
  const { data: claims, error: claimsErr } = await sb.auth.getClaims();
  assert.equal(claimsErr, null);
  assert.equal(claims.claims.sub, data.user.id);
  assert.equal(claims.claims.role, 'authenticated');
  assert.equal(claims.claims.user_metadata.plan, 'pro');
  assert.equal(claims.claims.amr[0].method, 'password');
  const dup = await client().auth.signUp({ email, password: 'secret123' });
  assert.equal(dup.error.code, 'user_already_exists');
});

test('refresh rotates; reuse after the interval revokes the session', async () => {
  const sb = client();
  const email = uniqueEmail('js-refresh');
  const { data } = await sb.auth.signUp({ email, password: 'secret123' });
  const first = data.session.refresh_token;
  const { data: r1, error: e1 } = await sb.auth.refreshSession({ refresh_token: first });
  assert.equal(e1, null);
  assert.notEqual(r1.session.refresh_token, first);
  const { data: again } = await client().auth.refreshSession({ refresh_token: first });
  assert.equal(again.session.refresh_token, r1.session.refresh_token); // concurrent tab, within 1 s
  await sleep(1500);
  const { error: theft } = await client().auth.refreshSession({ refresh_token: first });
  assert.equal(theft.code, 'refresh_token_already_used');
  const { error: after } = await client().auth.refreshSession({ refresh_token: r1.session.refresh_token });
  assert.ok(after, 'the current token of a revoked session must not refresh');
});

test('signOut local, others and global', async () => {
  const email = uniqueEmail('js-scope');
  await client().auth.signUp({ email, password: 'secret123' });
  const login = async () => {
    const c = client();
    const { data } = await c.auth.signInWithPassword({ email, password: 'secret123' });
    return { c, rt: data.session.refresh_token };
  };
  const a = await login();
  const b = await login();
  assert.equal((await a.c.auth.signOut({ scope: 'others' })).error, null);
  assert.ok((await client().auth.refreshSession({ refresh_token: b.rt })).error);
  const { data: aRef, error: aErr } = await client().auth.refreshSession({ refresh_token: a.rt });
  assert.equal(aErr, null);
  const c = await login();
  assert.equal((await c.c.auth.signOut({ scope: 'local' })).error, null);
  assert.ok((await client().auth.refreshSession({ refresh_token: c.rt })).error);
  const d = await login();
  assert.equal((await d.c.auth.signOut()).error, null); // default scope is global in supabase-js
  assert.ok((await client().auth.refreshSession({ refresh_token: aRef.session.refresh_token })).error);
});

test('getUser, updateUser and email change with a code', async () => {
  const sb = client();
  const email = uniqueEmail('js-upd');
  await sb.auth.signUp({ email, password: 'secret123', options: { data: { a: 1 } } });
  const { data: got } = await sb.auth.getUser();
  assert.equal(got.user.email, email);
  const { data: upd, error } = await sb.auth.updateUser({ data: { b: 2 } });
  assert.equal(error, null);
  assert.deepEqual(upd.user.user_metadata, { a: 1, b: 2 });
  const same = await sb.auth.updateUser({ password: 'secret123' });
  assert.equal(same.error.code, 'same_password');
  const newEmail = uniqueEmail('js-new');
  const { data: changed } = await sb.auth.updateUser({ email: newEmail });
  assert.equal(changed.user.new_email, newEmail);
  const code = codeOf(lastMail(newEmail, 'email_change'));
  const { data: done, error: doneErr } = await sb.auth.verifyOtp({ email: newEmail, token: code, type: 'email_change' });
  assert.equal(doneErr, null);
  assert.equal(done.user.email, newEmail);
  const { data: fresh } = await sb.auth.getUser();
  assert.equal(fresh.user.email, newEmail);
});

test('anonymous sign-in', async () => {
  const sb = client();
  const { data, error } = await sb.auth.signInAnonymously();
  assert.equal(error, null);
  assert.equal(data.user.is_anonymous, true);
  const { data: claims } = await sb.auth.getClaims();
  assert.equal(claims.claims.is_anonymous, true);
});

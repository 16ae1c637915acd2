// supabase-js against ownbase with email confirmations on (the default).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, admin, uniqueEmail, URL, ANON_KEY, SERVICE_KEY } from './helpers.mjs';
import { lastMail, mailsTo, codeOf, linkOf, ownerSql } from './auth_mail.mjs';

test('sign-up mails a code; verifyOtp confirms and signs in', async () => {
  const sb = client();
  const email = uniqueEmail('js-confirm');
  const { data, error } = await sb.auth.signUp({ email, password: 'secret123', options: { data: { name: 'Jo' } } });
  assert.equal(error, null);
  assert.equal(data.session, null);
  assert.equal(data.user.email, email);
  assert.equal(data.user.user_metadata.name, 'Jo');
  const early = await sb.auth.signInWithPassword({ email, password: 'secret123' });
  assert.equal(early.error.code, 'email_not_confirmed');
  const code = codeOf(lastMail(email, 'confirmation'));
  const verified = await sb.auth.verifyOtp({ email, token: code, type: 'signup' });
  assert.equal(verified.error, null);
  assert.ok(verified.data.session.access_token);
  assert.ok(verified.data.user.email_confirmed_at);
  const reused = await sb.auth.verifyOtp({ email, token: code, type: 'signup' });
  assert.equal(reused.error.code, 'otp_expired');
  const { data: signed, error: signErr } = await client().auth.signInWithPassword({ email, password: 'secret123' });
  assert.equal(signErr, null);
  assert.equal(signed.user.email, email);
});

test('confirmation link redirects to the site URL with tokens in the fragment', async () => {
  const email = uniqueEmail('js-link');
  await client().auth.signUp({ email, password: 'secret123' });
  const link = linkOf(lastMail(email, 'confirmation'));
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const location = res.headers.get('location');
  const params = new URLSearchParams(location.split('#')[1]);
  assert.equal(params.get('type'), 'signup');
  const sb = client();
  const { data, error } = await sb.auth.setSession({
    access_token: params.get('access_token'), refresh_token: params.get('refresh_token'),
  });
  assert.equal(error, null);
  assert.equal(data.user.email, email);
});

test('wrong password is invalid_credentials', async () => {
  const email = uniqueEmail('js-wrong');
  await admin().auth.admin.createUser({ email, password: 'secret123', email_confirm: true });
  const { error } = await client().auth.signInWithPassword({ email, password: 'not-it-at-all' });
  assert.equal(error.code, 'invalid_credentials');
  assert.equal(error.status, 400);
  assert.equal(error.message, 'Invalid login credentials');
});

test('OTP sign-in, recovery and the 4th mail in an hour refused', async () => {
  const sb = client();
  const email = uniqueEmail('js-otp');
  await admin().auth.admin.createUser({ email, password: 'secret123', email_confirm: true });
  assert.equal((await sb.auth.signInWithOtp({ email })).error, null);
  const code = codeOf(lastMail(email, 'magiclink'));
  const { data, error } = await sb.auth.verifyOtp({ email, token: code, type: 'email' });
  assert.equal(error, null);
  assert.equal(data.user.email, email);
  assert.equal((await sb.auth.resetPasswordForEmail(email)).error, null);
  const rcode = codeOf(lastMail(email, 'recovery'));
  const rec = await sb.auth.verifyOtp({ email, token: rcode, type: 'recovery' });
  assert.equal(rec.error, null);
  assert.equal((await sb.auth.updateUser({ password: 'brandnew99' })).error, null);
  assert.equal((await sb.auth.signInWithOtp({ email })).error, null); // third mail
  const fourth = await sb.auth.signInWithOtp({ email });
  assert.equal(fourth.error.code, 'over_email_send_rate_limit');
  assert.equal(fourth.error.status, 429);
  assert.equal(mailsTo(email).length, 3);
  const { error: loginErr } = await client().auth.signInWithPassword({ email, password: 'brandnew99' });
  assert.equal(loginErr, null);
});

test('admin create, list with pagination, update, delete', async () => {
  const adm = admin().auth.admin;
  const emails = [uniqueEmail('js-adm'), uniqueEmail('js-adm'), uniqueEmail('js-adm')];
  const ids = [];
  for (const email of emails) {
    const { data, error } = await adm.createUser({ email, password: 'secret123', user_metadata: { n: 1 } });
    assert.equal(error, null);
    ids.push(data.user.id);
  }
  const { data: page1, error: listErr } = await adm.listUsers({ page: 1, perPage: 2 });
  assert.equal(listErr, null);
  assert.equal(page1.users.length, 2);
  assert.ok(page1.total >= 3);
  assert.equal(page1.nextPage, 2);
  assert.ok(page1.lastPage >= 2);
  const { data: page2 } = await adm.listUsers({ page: 2, perPage: 2 });
  assert.ok(page2.users.length >= 1);
  assert.ok(!page2.users.some((u) => page1.users.find((v) => v.id === u.id)));
  const { data: upd, error: updErr } = await adm.updateUserById(ids[0], { user_metadata: { n: 2 }, email_confirm: true });
  assert.equal(updErr, null);
  assert.equal(upd.user.user_metadata.n, 2);
  assert.ok(upd.user.email_confirmed_at);
  const { error: delErr } = await adm.deleteUser(ids[1]);
  assert.equal(delErr, null);
  const { error: goneErr } = await adm.getUserById(ids[1]);
  assert.equal(goneErr.status, 404);
  // supabase-js validates ids itself; the server checks them too.
  const badId = await fetch(URL + '/auth/v1/admin/users/nope', {
    headers: { apikey: SERVICE_KEY, Authorization: `Bearer ${SERVICE_KEY}`, 'X-Supabase-Api-Version': '2024-01-01' },
  });
  assert.equal(badId.status, 404);
  assert.deepEqual(await badId.json(), { code: 'validation_failed', message: 'user_id must be an UUID' });
});

test('a normal user is refused on admin routes', async () => {
  const email = uniqueEmail('js-normal');
  await admin().auth.admin.createUser({ email, password: 'secret123', email_confirm: true });
  const { data } = await client().auth.signInWithPassword({ email, password: 'secret123' });
  const userClient = client(ANON_KEY, { global: { headers: { Authorization: `Bearer ${data.session.access_token}` } } });
  const { error } = await userClient.auth.admin.listUsers();
  assert.equal(error.status, 403);
  assert.equal(error.code, 'not_admin');
  const res = await fetch(URL + '/auth/v1/admin/users', {
    headers: { apikey: ANON_KEY, Authorization: `Bearer ${data.session.access_token}` },
  });
  assert.equal(res.status, 403);
  assert.equal(res.headers.get('x-sb-error-code'), 'not_admin');
  const legacy = await res.json();
  assert.deepEqual(legacy, { code: 403, error_code: 'not_admin', msg: 'User not allowed' });
});

test('anonymous sign-in is refused when disabled', async () => {
  const { error } = await client().auth.signInAnonymously();
  assert.equal(error.code, 'anonymous_provider_disabled');
  assert.equal(error.status, 422);
});

test('an expired code is refused', async () => {
  const sb = client();
  const email = uniqueEmail('js-expired');
  await sb.auth.signUp({ email, password: 'secret123' });
  const code = codeOf(lastMail(email, 'confirmation'));
  // Age the code past the 15-minute validity in the database instead of waiting.
  const out = ownerSql("update auth.one_time_tokens set created_at = created_at - interval '16 minutes' where relates_to = $1", email);
  assert.equal(out, 'UPDATE 1');
  const { error } = await sb.auth.verifyOtp({ email, token: code, type: 'signup' });
  assert.equal(error.code, 'otp_expired');
  assert.equal(error.status, 403);
});

test('PKCE: the link redirects with ?code= and exchangeCodeForSession signs in', async () => {
  const sb = client(ANON_KEY, { auth: { flowType: 'pkce', persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } });
  const email = uniqueEmail('js-pkce');
  const { error } = await sb.auth.signUp({ email, password: 'secret123' });
  assert.equal(error, null);
  const link = linkOf(lastMail(email, 'confirmation'));
  assert.match(link, /token=pkce_/);
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const code = new globalThis.URL(res.headers.get('location')).searchParams.get('code');
  assert.ok(code);
  const { data, error: exErr } = await sb.auth.exchangeCodeForSession(code);
  assert.equal(exErr, null);
  assert.equal(data.user.email, email);
  assert.ok(data.session.access_token);
});

test('features ownbase does not build report GoTrue codes (AuthApiError), not unknown errors', async () => {
  const email = uniqueEmail('js-off');
  const { data: created } = await admin().auth.admin.createUser({ email, password: 'secret123', email_confirm: true });
  const sb = client();
  await sb.auth.signInWithPassword({ email, password: 'secret123' });
  const expect = async (promise, code, status) => {
    const { error } = await promise;
    assert.equal(error?.name, 'AuthApiError', `${code}: ${error}`);
    assert.equal(error.code, code);
    assert.equal(error.status, status);
  };
  await expect(sb.auth.signInWithSSO({ domain: 'acme.test' }), 'saml_provider_disabled', 404);
  await expect(sb.auth.linkIdentity({ provider: 'github', options: { skipBrowserRedirect: true } }),
    'manual_linking_disabled', 404);
  await expect(sb.auth.mfa.enroll({ factorType: 'phone', phone: '+15555550100' }), 'mfa_phone_enroll_not_enabled', 422);
  await expect(sb.auth.mfa.challenge({ factorId: '00000000-0000-4000-8000-000000000001' }), 'mfa_factor_not_found', 404);
  await expect(client().auth.signInWithIdToken({ provider: 'google', token: 'x.y.z' }), 'provider_disabled', 400);
  await expect(client().auth.signInWithOtp({ phone: '+15555550100' }), 'phone_provider_disabled', 400);
  await expect(client().auth.signInWithPassword({ phone: '+15555550100', password: 'secret123' }),
    'phone_provider_disabled', 422);
  const factors = await admin().auth.admin.mfa.listFactors({ userId: created.user.id });
  assert.equal(factors.error, null);
  assert.deepEqual(factors.data.factors, []);
});

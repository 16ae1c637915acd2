// supabase-js signInWithOAuth (PKCE), exchangeCodeForSession, signInWithIdToken and identity linking
// against ownbase with a real local OpenID Connect provider (run by tests/auth/test_oauth.py, which
// starts the provider and passes OIDC_URL; not a *.test.mjs file because it needs that provider).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { admin, client, uniqueEmail } from './helpers.mjs';

const IDP = process.env.OIDC_URL;
const APP = 'http://app.example';

function memoryStorage() {
  const items = new Map();
  return {
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => { items.set(k, v); },
    removeItem: (k) => { items.delete(k); },
    items,
  };
}

function pkceClient(storage = memoryStorage()) {
  return client(undefined, {
    auth: { flowType: 'pkce', storage, persistSession: true, autoRefreshToken: false,
            detectSessionInUrl: false },
  });
}

// A browser: follows redirects by hand, keeps cookies (per host, as browsers do regardless of port)
// and answers the provider's consent form with `sub`.
class Browser {
  constructor() { this.cookies = new Map(); }
  cookieHeader() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  keep(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const [name, value] = pair.split('=');
      const gone = attrs.some((a) => /max-age=0/i.test(a.trim()));
      if (gone) this.cookies.delete(name.trim()); else this.cookies.set(name.trim(), value);
    }
  }
  async request(url, init = {}) {
    const res = await fetch(url, { ...init, redirect: 'manual',
                                  headers: { ...(init.headers || {}), cookie: this.cookieHeader() } });
    this.keep(res);
    return res;
  }
  async go(url, sub) {
    for (let hop = 0; hop < 12; hop++) {
      if (url.startsWith(APP) || url.startsWith('http://site.example')) return url;
      let res = await this.request(url);
      if (res.status === 200 && sub) {
        res = await this.request(url, { method: 'POST', body: new URLSearchParams({ sub }),
                                        headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      }
      assert.ok([301, 302, 303, 307].includes(res.status), `stuck at ${url}: ${res.status}`);
      url = new globalThis.URL(res.headers.get('location'), url).toString();
    }
    throw new Error('too many redirects');
  }
}

async function providerUser(email, verified = true) {
  const sub = `js-${randomUUID().slice(0, 8)}`;
  const res = await fetch(`${IDP}/users/${sub}`, { method: 'PUT', headers: { 'content-type': 'application/json' },
                                                   body: JSON.stringify({ email, email_verified: verified }) });
  assert.equal(res.status, 204);
  return sub;
}

async function mint(claims) {
  const now = Math.floor(Date.now() / 1000);
  const res = await fetch(`${IDP}/test/mint`, { method: 'POST', headers: { 'content-type': 'application/json' },
                                                body: JSON.stringify({ iss: IDP, iat: now, exp: now + 600, ...claims }) });
  return (await res.json()).id_token;
}

test('signInWithOAuth (PKCE) through the provider, then exchangeCodeForSession; the code works once', async () => {
  const email = uniqueEmail('js-oauth');
  const sub = await providerUser(email);
  const storage = memoryStorage();
  const sb = pkceClient(storage);
  const { data, error } = await sb.auth.signInWithOAuth({
    provider: 'google', options: { redirectTo: `${APP}/js`, skipBrowserRedirect: true } });
  assert.equal(error, null);
  assert.match(data.url, /code_challenge=/);
  const landed = await new Browser().go(data.url, sub);
  const code = new globalThis.URL(landed).searchParams.get('code');
  assert.ok(landed.startsWith(`${APP}/js?code=`), landed);
  const saved = [...storage.items]; // the verifier, to present the spent code again below
  const exchanged = await sb.auth.exchangeCodeForSession(code);
  assert.equal(exchanged.error, null);
  assert.equal(exchanged.data.user.email, email);
  assert.ok(exchanged.data.session.provider_token);
  assert.deepEqual(exchanged.data.user.identities.map((i) => [i.provider, i.id]), [['google', sub]]);
  for (const [k, v] of saved) storage.setItem(k, v); // the same verifier again: only the code is spent
  const again = await sb.auth.exchangeCodeForSession(code);
  assert.equal(again.error.code, 'flow_state_not_found');
});

test('a callback carried to another browser is refused (state bound to the browser)', async () => {
  const sub = await providerUser(uniqueEmail('js-csrf'));
  const sb = pkceClient();
  const { data } = await sb.auth.signInWithOAuth({
    provider: 'google', options: { redirectTo: `${APP}/js`, skipBrowserRedirect: true } });
  const attacker = new Browser();
  const toProvider = await attacker.request(data.url);
  assert.equal(toProvider.status, 302);
  const consent = await attacker.request(toProvider.headers.get('location'), {
    method: 'POST', body: new URLSearchParams({ sub }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const callback = consent.headers.get('location');
  const res = await new Browser().request(callback);
  assert.equal(res.status, 303);
  const location = new globalThis.URL(res.headers.get('location'));
  assert.equal(location.searchParams.get('error_code'), 'bad_oauth_state');
});

test('an unlisted redirectTo lands on the site URL instead', async () => {
  const email = uniqueEmail('js-redirect');
  const sub = await providerUser(email);
  const sb = pkceClient();
  const { data } = await sb.auth.signInWithOAuth({
    provider: 'google', options: { redirectTo: 'http://evil.example/steal', skipBrowserRedirect: true } });
  const landed = await new Browser().go(data.url, sub);
  assert.ok(landed.startsWith('http://site.example'), landed);
  const code = new globalThis.URL(landed).searchParams.get('code');
  const { data: session, error } = await sb.auth.exchangeCodeForSession(code);
  assert.equal(error, null);
  assert.equal(session.user.email, email);
});

test('signInWithIdToken with a nonce; wrong nonce refused', async () => {
  const email = uniqueEmail('js-idt');
  const nonce = randomUUID();
  const token = await mint({ sub: `js-idt-${randomUUID()}`, aud: 'google-client', email, email_verified: true,
                             nonce: createHash('sha256').update(nonce).digest('hex') });
  const sb = pkceClient();
  const ok = await sb.auth.signInWithIdToken({ provider: 'google', token, nonce });
  assert.equal(ok.error, null);
  assert.equal(ok.data.user.email, email);
  const bad = await pkceClient().auth.signInWithIdToken({ provider: 'google', token, nonce: 'other' });
  assert.equal(bad.error.message, 'Nonces mismatch');
});

test('linkIdentity, getUserIdentities, unlinkIdentity', async () => {
  const email = uniqueEmail('js-link');
  const sb = pkceClient();
  const created = await admin().auth.admin.createUser({ email, password: 'secret123', email_confirm: true });
  assert.equal(created.error, null);
  const signedIn = await sb.auth.signInWithPassword({ email, password: 'secret123' });
  assert.equal(signedIn.error, null);
  const sub = await providerUser(uniqueEmail('js-linked'));
  const { data, error } = await sb.auth.linkIdentity({ provider: 'google', options: { redirectTo: `${APP}/l`,
                                                                                       skipBrowserRedirect: true } });
  assert.equal(error, null);
  assert.ok(data.url.startsWith(IDP), data.url);
  const landed = await new Browser().go(data.url, sub);
  const code = new globalThis.URL(landed).searchParams.get('code');
  const linked = await sb.auth.exchangeCodeForSession(code);
  assert.equal(linked.error, null);
  assert.equal(linked.data.user.email, email);
  const ids = await sb.auth.getUserIdentities();
  assert.deepEqual(ids.data.identities.map((i) => i.provider).sort(), ['email', 'google']);
  const google = ids.data.identities.find((i) => i.provider === 'google');
  const unlinked = await sb.auth.unlinkIdentity(google);
  assert.equal(unlinked.error, null);
  const after = await sb.auth.getUserIdentities();
  assert.deepEqual(after.data.identities.map((i) => i.provider), ['email']);
  const last = await sb.auth.unlinkIdentity(after.data.identities[0]);
  assert.equal(last.error.code, 'single_identity_not_deletable');
});

// ownbase-env: OWNBASE_AUTH_PASSKEY_ENABLED=true OWNBASE_SITE_URL=http://localhost:3000
// supabase-js MFA (TOTP, codes computed here) and passkeys (supabase-js's passkey API with a software
// authenticator: a real P-256 key signing real authenticatorData and clientDataJSON).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { client, admin, uniqueEmail } from './helpers.mjs';

const ORIGIN = 'http://localhost:3000';

// --- TOTP (RFC 6238, SHA-1, 6 digits, 30 s) ---
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text.replace(/=+$/, '')) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(secret, offset = 0) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset));
  const mac = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

async function signedInUser(tag) {
  const email = uniqueEmail(tag);
  const { data, error } = await admin().auth.admin.createUser({ email, password: 'secret123', email_confirm: true });
  assert.equal(error, null);
  const sb = client();
  assert.equal((await sb.auth.signInWithPassword({ email, password: 'secret123' })).error, null);
  return { sb, email, id: data.user.id };
}

test('TOTP: enroll, verify steps up to aal2, RLS sees aal2, unenroll steps down', async () => {
  const { sb, id } = await signedInUser('js-mfa');
  assert.deepEqual((await sb.from('js_mfa_notes').select('*')).data, []);
  const { data: enrolled, error } = await sb.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone' });
  assert.equal(error, null);
  assert.ok(enrolled.totp.qr_code.startsWith('data:image/svg+xml;utf-8,<?xml'));
  assert.match(enrolled.totp.uri, /^otpauth:\/\/totp\/localhost:.+secret=/);
  const secret = enrolled.totp.secret;

  const { data: challenge } = await sb.auth.mfa.challenge({ factorId: enrolled.id });
  const wrong = await sb.auth.mfa.verify({ factorId: enrolled.id, challengeId: challenge.id,
    code: String((Number(totp(secret)) + 1) % 1_000_000).padStart(6, '0') });
  assert.equal(wrong.error.code, 'mfa_verification_failed');
  const code = totp(secret);
  const ok = await sb.auth.mfa.verify({ factorId: enrolled.id, challengeId: challenge.id, code });
  assert.equal(ok.error, null);
  assert.equal(claims(ok.data.access_token).aal, 'aal2');
  const level = await sb.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.equal(level.data.currentLevel, 'aal2');
  assert.equal(level.data.nextLevel, 'aal2');
  assert.deepEqual(level.data.currentAuthenticationMethods.map((m) => m.method), ['totp', 'password']);
  assert.deepEqual((await sb.from('js_mfa_notes').select('*')).data, [{ id: 1, body: 'launch codes' }]);

  // Replay of the used code through a new challenge is refused.
  const replay = await sb.auth.mfa.challengeAndVerify({ factorId: enrolled.id, code });
  assert.equal(replay.error.code, 'mfa_verification_failed');
  const { data: factors } = await sb.auth.mfa.listFactors();
  assert.deepEqual(factors.totp.map((f) => f.id), [enrolled.id]);
  const { data: adminList } = await admin().auth.admin.mfa.listFactors({ userId: id });
  assert.deepEqual(adminList.factors.map((f) => f.status), ['verified']);

  assert.equal((await sb.auth.mfa.unenroll({ factorId: enrolled.id })).error, null);
  const { data: refreshed } = await sb.auth.refreshSession();
  assert.equal(claims(refreshed.session.access_token).aal, 'aal1');
  assert.deepEqual((await sb.from('js_mfa_notes').select('*')).data, []);
});

// --- passkeys: a software authenticator ---
function cbor(value) {
  const head = (major, n) => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 256) return Buffer.from([(major << 5) | 24, n]);
    if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
    const b = Buffer.alloc(5); b[0] = (major << 5) | 26; b.writeUInt32BE(n, 1); return b;
  };
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') { const b = Buffer.from(value); return Buffer.concat([head(3, b.length), b]); }
  if (value instanceof Map) {
    return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
  }
  throw new Error('unsupported');
}

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const arrayBuffer = (buf) => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);

class SoftAuthenticator {
  constructor() {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    this.jwk = publicKey.export({ format: 'jwk' });
    this.credentialId = crypto.randomBytes(32);
    this.count = 0;
  }

  // Raw ceremony outputs (what an authenticator + browser produce), challenge and handle base64url.
  attest(rpId, challenge, userHandle) {
    this.userHandle = userHandle;
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge, origin: ORIGIN }));
    const cose = cbor(new Map([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(this.jwk.x, 'base64url')],
      [-3, Buffer.from(this.jwk.y, 'base64url')]]));
    const idLen = Buffer.alloc(2); idLen.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([crypto.createHash('sha256').update(rpId).digest(), Buffer.from([0x45]),
      Buffer.alloc(4), Buffer.alloc(16), idLen, this.credentialId, cose]);
    const attestationObject = cbor(new Map([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return { clientDataJSON, attestationObject };
  }

  assert(rpId, challenge) {
    this.count += 1;
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin: ORIGIN }));
    const counter = Buffer.alloc(4); counter.writeUInt32BE(this.count);
    const authenticatorData = Buffer.concat([crypto.createHash('sha256').update(rpId).digest(), Buffer.from([0x05]),
      counter]);
    const signature = crypto.sign('sha256',
      Buffer.concat([authenticatorData, crypto.createHash('sha256').update(clientDataJSON).digest()]), this.privateKey);
    return { clientDataJSON, authenticatorData, signature, userHandle: Buffer.from(this.userHandle, 'base64url') };
  }

  // The JSON form supabase-js's serializeCredential*Response produces.
  create(options) {
    const out = this.attest(options.rp.id, options.challenge, options.user.id);
    const id = b64u(this.credentialId);
    return { id, rawId: id, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform',
      response: { clientDataJSON: b64u(out.clientDataJSON), attestationObject: b64u(out.attestationObject),
        transports: ['internal'] } };
  }

  get(options) {
    const out = this.assert(options.rpId, options.challenge);
    const id = b64u(this.credentialId);
    return { id, rawId: id, type: 'public-key', clientExtensionResults: {}, authenticatorAttachment: 'platform',
      response: { clientDataJSON: b64u(out.clientDataJSON), authenticatorData: b64u(out.authenticatorData),
        signature: b64u(out.signature), userHandle: b64u(out.userHandle) } };
  }
}

// A browser's WebAuthn API backed by the software authenticator, for supabase-js's one-call
// signInWithPasskey() / registerPasskey(). Installed only around those calls.
class FakePublicKeyCredential {
  constructor(id, response) {
    this.id = b64u(id);
    this.rawId = arrayBuffer(id);
    this.type = 'public-key';
    this.authenticatorAttachment = 'platform';
    this.response = response;
  }

  getClientExtensionResults() { return {}; }
}

async function withBrowser(device, run) {
  const saved = { navigator: Object.getOwnPropertyDescriptor(globalThis, 'navigator') };
  globalThis.window = globalThis;
  globalThis.document = {};
  globalThis.PublicKeyCredential = FakePublicKeyCredential;
  const credentials = {
    async create({ publicKey }) {
      const out = device.attest(publicKey.rp.id, b64u(new Uint8Array(publicKey.challenge)),
        b64u(new Uint8Array(publicKey.user.id)));
      return new FakePublicKeyCredential(device.credentialId, {
        clientDataJSON: arrayBuffer(out.clientDataJSON), attestationObject: arrayBuffer(out.attestationObject) });
    },
    async get({ publicKey }) {
      const out = device.assert(publicKey.rpId, b64u(new Uint8Array(publicKey.challenge)));
      return new FakePublicKeyCredential(device.credentialId, {
        clientDataJSON: arrayBuffer(out.clientDataJSON), authenticatorData: arrayBuffer(out.authenticatorData),
        signature: arrayBuffer(out.signature), userHandle: arrayBuffer(out.userHandle) });
    },
  };
  Object.defineProperty(globalThis, 'navigator', { value: { credentials }, configurable: true, writable: true });
  try {
    return await run();
  } finally {
    delete globalThis.window;
    delete globalThis.document;
    delete globalThis.PublicKeyCredential;
    if (saved.navigator) Object.defineProperty(globalThis, 'navigator', saved.navigator);
    else delete globalThis.navigator;
  }
}

test('passkeys: register, sign in, list, rename, remove through supabase-js', async () => {
  const { sb, email, id } = await signedInUser('js-passkey');
  const device = new SoftAuthenticator();
  const { data: start, error: startErr } = await sb.auth.passkey.startRegistration();
  assert.equal(startErr, null);
  const { data: registered, error: regErr } = await sb.auth.passkey.verifyRegistration({
    challengeId: start.challenge_id, credential: device.create(start.options) });
  assert.equal(regErr, null);
  assert.equal(registered.friendly_name, 'Passkey');

  const other = client();
  const { data: opts } = await other.auth.passkey.startAuthentication();
  const { data: signed, error: signErr } = await other.auth.passkey.verifyAuthentication({
    challengeId: opts.challenge_id, credential: device.get(opts.options) });
  assert.equal(signErr, null);
  assert.equal(signed.user.email, email);
  assert.deepEqual(claims(signed.session.access_token).amr.map((m) => m.method), ['passkey']);
  const { data: { user } } = await other.auth.getUser();
  assert.equal(user.id, id);

  const { data: listed } = await other.auth.passkey.list();
  assert.deepEqual(listed.map((p) => p.id), [registered.id]);
  const { data: renamed } = await other.auth.passkey.update({ passkeyId: registered.id, friendlyName: 'Laptop' });
  assert.equal(renamed.friendly_name, 'Laptop');
  const { data: adminList } = await admin().auth.admin.passkey.listPasskeys({ userId: id });
  assert.deepEqual(adminList.map((p) => p.friendly_name), ['Laptop']);
  assert.equal((await other.auth.passkey.delete({ passkeyId: registered.id })).error, null);
  assert.deepEqual((await other.auth.passkey.list()).data, []);

  const { data: again } = await client().auth.passkey.startAuthentication();
  const refused = await client().auth.passkey.verifyAuthentication({
    challengeId: again.challenge_id, credential: device.get(again.options) });
  assert.equal(refused.error.code, 'webauthn_verification_failed');
});

test('passkeys: registerPasskey() and signInWithPasskey() run the whole ceremony', async () => {
  const { sb, email } = await signedInUser('js-passkey-browser');
  const device = new SoftAuthenticator();
  const registered = await withBrowser(device, () => sb.auth.registerPasskey());
  assert.equal(registered.error, null);
  assert.equal(registered.data.friendly_name, 'Passkey');
  const other = client();
  const signed = await withBrowser(device, () => other.auth.signInWithPasskey());
  assert.equal(signed.error, null);
  assert.equal(signed.data.user.email, email);
  assert.equal(claims(signed.data.session.access_token).aal, 'aal1');
  assert.equal((await other.auth.getUser()).data.user.email, email);
});

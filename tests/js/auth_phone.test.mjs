// ownbase-env: OWNBASE_AUTH_PHONE_ENABLED=true OWNBASE_AUTH_SMS_MAX_PER_HOUR=0 OWNBASE_AUTH_AUTOCONFIRM=true
// supabase-js phone flows against ownbase's console SMS outbox (read through `ownbase sms list`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { client, uniqueEmail } from './helpers.mjs';

const newNumber = () => `1555${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;

function lastCode(number) {
  const out = execFileSync(process.env.PYTHON || 'python3',
    ['-m', 'ownbase', 'sms', 'list', '--to', number, '--json'],
    { env: { ...process.env, OWNBASE_DATABASE_URL: process.env.OWNBASE_DB_URL }, encoding: 'utf8' });
  const rows = JSON.parse(out);
  if (!rows.length) throw new Error(`no SMS to ${number}`);
  return /Your code is (\d{6})/.exec(rows[rows.length - 1].body)[1];
}

test('signInWithOtp({phone}) then verifyOtp type sms', async () => {
  const sb = client();
  const number = newNumber();
  const { error } = await sb.auth.signInWithOtp({ phone: `+${number}` });
  assert.equal(error, null);
  const bad = await sb.auth.verifyOtp({ phone: number, token: '000000', type: 'sms' });
  const code = lastCode(number);
  if (code !== '000000') assert.equal(bad.error.code, 'otp_expired');
  const { data, error: verr } = await sb.auth.verifyOtp({ phone: `+${number}`, token: code, type: 'sms' });
  assert.equal(verr, null);
  assert.equal(data.user.phone, number);
  assert.ok(data.user.phone_confirmed_at);
  const again = await sb.auth.signInWithOtp({ phone: number });
  assert.equal(again.error.code, 'over_sms_send_rate_limit');
  assert.equal(again.error.status, 429);
});

test('updateUser({phone}) then verifyOtp type phone_change, then password sign-in by phone', async () => {
  const sb = client();
  await sb.auth.signUp({ email: uniqueEmail('js-phone'), password: 'secret123' });
  const number = newNumber();
  const { data, error } = await sb.auth.updateUser({ phone: number });
  assert.equal(error, null);
  assert.equal(data.user.new_phone, number);
  const { data: v, error: verr } = await sb.auth.verifyOtp({ phone: number, token: lastCode(number),
    type: 'phone_change' });
  assert.equal(verr, null);
  assert.equal(v.user.phone, number);
  const { data: s, error: serr } = await client().auth.signInWithPassword({ phone: `+${number}`, password: 'secret123' });
  assert.equal(serr, null);
  assert.equal(s.user.id, v.user.id);
});

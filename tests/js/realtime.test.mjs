// Realtime through @supabase/supabase-js, over both serializers (vsn 1.0.0 JSON objects and the
// default 2.0.0 JSON arrays + binary broadcast frames).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { client, admin, ANON_KEY, SERVICE_KEY } from './helpers.mjs';

const clients = [];
function rt(key, vsn) {
  const c = client(key, { realtime: { transport: WebSocket, vsn } });
  clients.push(c);
  return c;
}
after(async () => {
  for (const c of clients) await c.removeAllChannels();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return;
    await sleep(20);
  }
  throw new Error('condition not reached');
}
function subscribe(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(status));
    });
  });
}
const uid = () => Math.random().toString(36).slice(2, 10);

for (const vsn of ['1.0.0', '2.0.0']) {
  test(`broadcast with self and ack, vsn ${vsn}`, async () => {
    const name = `js-room-${uid()}`;
    const a = rt(ANON_KEY, vsn).channel(name, { config: { broadcast: { self: true, ack: true } } });
    const b = rt(ANON_KEY, vsn).channel(name);
    const gotA = [], gotB = [];
    a.on('broadcast', { event: 'msg' }, (p) => gotA.push(p));
    b.on('broadcast', { event: 'msg' }, (p) => gotB.push(p));
    await subscribe(a);
    await subscribe(b);
    const res = await a.send({ type: 'broadcast', event: 'msg', payload: { text: 'héllo ✓' } });
    assert.equal(res, 'ok'); // ack: the server confirmed
    await until(() => gotA.length === 1 && gotB.length === 1);
    assert.deepEqual(gotB[0].payload, { text: 'héllo ✓' });
    assert.equal(gotB[0].event, 'msg');
    // b has self: false, so its own messages do not come back to it
    await b.send({ type: 'broadcast', event: 'msg', payload: { from: 'b' } });
    await until(() => gotA.length === 2);
    await sleep(200);
    assert.equal(gotB.length, 1);
  });

  test(`http broadcast reaches subscribers, vsn ${vsn}`, async () => {
    const name = `js-http-${uid()}`;
    const sub = rt(ANON_KEY, vsn).channel(name);
    const got = [];
    sub.on('broadcast', { event: '*' }, (p) => got.push(p));
    await subscribe(sub);
    const sender = rt(ANON_KEY, vsn).channel(name);
    const res = await sender.httpSend('ping', { n: 42 });
    assert.deepEqual(res, { success: true });
    // send() on a channel that is not joined falls back to POST /api/broadcast
    const res2 = await sender.send({ type: 'broadcast', event: 'ping2', payload: { n: 43 } });
    assert.equal(res2, 'ok');
    await until(() => got.length === 2);
    assert.deepEqual(got.map((p) => p.payload.n).sort(), [42, 43]);
  });

  test(`presence sync, join and leave, vsn ${vsn}`, async () => {
    const name = `js-lobby-${uid()}`;
    const ca = rt(ANON_KEY, vsn);
    const a = ca.channel(name, { config: { presence: { key: 'alice' } } });
    const b = rt(ANON_KEY, vsn).channel(name, { config: { presence: { key: 'bob' } } });
    const joins = [], leaves = [];
    b.on('presence', { event: 'sync' }, () => {});
    b.on('presence', { event: 'join' }, ({ key }) => joins.push(key));
    b.on('presence', { event: 'leave' }, ({ key }) => leaves.push(key));
    a.on('presence', { event: 'sync' }, () => {});
    await subscribe(a);
    await subscribe(b);
    assert.equal(await a.track({ online_at: 1 }), 'ok');
    await until(() => joins.includes('alice'));
    assert.equal(b.presenceState().alice[0].online_at, 1);
    await ca.removeChannel(a);
    await until(() => leaves.includes('alice'));
    assert.equal(b.presenceState().alice, undefined);
  });

  test(`postgres_changes: events, filter and RLS, vsn ${vsn}`, async () => {
    const tag = uid();
    const anon = rt(ANON_KEY, vsn).channel(`js-pg-anon-${tag}`);
    const svc = rt(SERVICE_KEY, vsn).channel(`js-pg-svc-${tag}`);
    const anonRows = [], svcRows = [], filtered = [];
    anon.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_js' }, (p) => anonRows.push(p));
    svc.on('postgres_changes', { event: '*', schema: 'public', table: 'rt_js' }, (p) => svcRows.push(p));
    svc.on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'rt_js', filter: `kind=eq.${tag}-x` }, (p) => filtered.push(p));
    await subscribe(anon);
    await subscribe(svc);
    const db = admin();
    let r = await db.from('rt_js').insert([
      { body: 'public', kind: tag, is_public: true },
      { body: 'private', kind: tag, is_public: false },
    ]);
    assert.equal(r.error, null);
    r = await db.from('rt_js').update({ kind: `${tag}-x` }).eq('kind', tag).eq('body', 'private');
    assert.equal(r.error, null);
    // deleted at once: RLS is judged on the row as it was inserted, so anon still gets the insert
    r = await db.from('rt_js').delete().eq('body', 'public').like('kind', `${tag}%`);
    assert.equal(r.error, null);
    await until(() => svcRows.length === 4 && filtered.length === 1 && anonRows.length >= 1);
    await sleep(300);
    // anon sees only the public row; the service role sees everything
    assert.deepEqual(anonRows.map((p) => p.new.body), ['public']);
    assert.deepEqual(svcRows.map((p) => p.eventType), ['INSERT', 'INSERT', 'UPDATE', 'DELETE']);
    assert.equal(filtered[0].new.kind, `${tag}-x`);
    assert.equal(filtered[0].new.body, 'private');
    assert.equal(svcRows[3].old.id, svcRows[0].new.id);
    assert.equal(typeof svcRows[0].commit_timestamp, 'string');
    assert.equal(svcRows[0].schema, 'public');
    assert.equal(svcRows[0].table, 'rt_js');
  });
}

test('binary payloads travel as binary frames (vsn 2.0.0)', async () => {
  const name = `js-bin-${uid()}`;
  const a = rt(ANON_KEY, '2.0.0').channel(name, { config: { broadcast: { self: true } } });
  const got = [];
  a.on('broadcast', { event: 'blob' }, (p) => got.push(p));
  await subscribe(a);
  const bytes = new Uint8Array([0, 1, 2, 250, 255]);
  await a.send({ type: 'broadcast', event: 'blob', payload: bytes.buffer });
  await until(() => got.length === 1);
  assert.deepEqual([...new Uint8Array(got[0].payload)], [0, 1, 2, 250, 255]);
});

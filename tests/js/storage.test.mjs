// Storage through @supabase/storage-js (supabase.storage), against the live server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, client, URL } from './helpers.mjs';

const PNG_40x20 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAACgAAAAUCAIAAABwJOjsAAAAJ0lEQVR4nGPkOiHHMBCAaUBsHbV41OJRi0ctHrV41OJRi0ctHhAAAKHXARgfA+DmAAAAAElFTkSuQmCC',
  'base64',
);
const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)];
const unique = (p = 'js') => `${p}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

async function newBucket(options = {}) {
  const id = unique();
  const { data, error } = await admin().storage.createBucket(id, options);
  assert.equal(error, null);
  assert.deepEqual(data, { name: id });
  return id;
}

test('bucket CRUD', async () => {
  const sb = admin();
  const id = await newBucket({ public: false, fileSizeLimit: '20mb', allowedMimeTypes: ['image/*'] });
  let { data, error } = await sb.storage.getBucket(id);
  assert.equal(error, null);
  assert.equal(data.file_size_limit, 20_000_000);
  assert.deepEqual(data.allowed_mime_types, ['image/*']);
  ({ data, error } = await sb.storage.updateBucket(id, { public: true, fileSizeLimit: 1024 }));
  assert.equal(error, null);
  assert.equal((await sb.storage.getBucket(id)).data.public, true);
  ({ data } = await sb.storage.listBuckets());
  assert.ok(data.some((b) => b.id === id));
  ({ error } = await sb.storage.createBucket(id));
  assert.equal(error.statusCode ?? error.status, '409');
  await sb.storage.from(id).upload('x.png', PNG_40x20, { contentType: 'image/png' });
  ({ error } = await sb.storage.deleteBucket(id));
  assert.match(error.message, /not empty/);
  ({ error } = await sb.storage.emptyBucket(id));
  assert.equal(error, null);
  ({ data, error } = await sb.storage.deleteBucket(id));
  assert.equal(error, null);
  assert.equal(data.message, 'Successfully deleted');
});

test('upload (Blob, Buffer), download, info, exists, list, conflicts', async () => {
  const files = admin().storage.from(await newBucket());
  let { data, error } = await files.upload('docs/a.txt', new Blob(['hello from js'], { type: 'text/plain' }), {
    cacheControl: '120', metadata: { from: 'blob' },
  });
  assert.equal(error, null);
  assert.equal(data.path, 'docs/a.txt');
  assert.ok(data.id);
  ({ data, error } = await files.upload('docs/b.bin', Buffer.from([1, 2, 3]), {
    contentType: 'application/octet-stream', metadata: { from: 'buffer' },
  }));
  assert.equal(error, null);
  ({ error } = await files.upload('docs/a.txt', new Blob(['again'])));
  assert.equal(error.statusCode, '409');
  ({ error } = await files.upload('docs/a.txt', new Blob(['replaced']), { upsert: true }));
  assert.equal(error, null);
  ({ data, error } = await files.download('docs/a.txt'));
  assert.equal(error, null);
  assert.equal(await data.text(), 'replaced');
  ({ data } = await files.download('docs/b.bin'));
  assert.deepEqual([...new Uint8Array(await data.arrayBuffer())], [1, 2, 3]);
  ({ data, error } = await files.info('docs/b.bin'));
  assert.equal(error, null);
  assert.equal(data.size, 3);
  assert.equal(data.contentType, 'application/octet-stream');
  assert.deepEqual(data.metadata, { from: 'buffer' });
  assert.equal((await files.exists('docs/b.bin')).data, true);
  assert.equal((await files.exists('docs/none.bin')).data, false);
  ({ data } = await files.list());
  assert.deepEqual(data.map((e) => [e.name, e.id]), [['docs', null]]);
  ({ data } = await files.list('docs', { sortBy: { column: 'name', order: 'desc' } }));
  assert.deepEqual(data.map((e) => e.name), ['b.bin', 'a.txt']);
  ({ data } = await files.list('docs', { search: 'a' }));
  assert.deepEqual(data.map((e) => e.name), ['a.txt']);
  ({ error } = await files.download('docs/missing.txt'));
  assert.ok(error);
});

test('update, move, copy, remove', async () => {
  const files = admin().storage.from(await newBucket());
  await files.upload('one.txt', new Blob(['1']));
  let { error } = await files.update('one.txt', new Blob(['1b']));
  assert.equal(error, null);
  let { data } = await files.move('one.txt', 'moved/one.txt');
  assert.equal(data.message, 'Successfully moved');
  ({ data, error } = await files.copy('moved/one.txt', 'copy.txt'));
  assert.equal(error, null);
  assert.equal(await (await files.download('copy.txt')).data.text(), '1b');
  assert.equal((await files.exists('one.txt')).data, false);
  ({ data, error } = await files.remove(['copy.txt', 'moved/one.txt']));
  assert.equal(error, null);
  assert.deepEqual(data.map((r) => r.name).sort(), ['copy.txt', 'moved/one.txt']);
  assert.deepEqual((await files.list()).data, []);
});

test('signed URLs, signed upload URLs, public URLs', async () => {
  const id = await newBucket({ public: true });
  const files = admin().storage.from(id);
  await files.upload('s/f.txt', new Blob(['signed body']), { contentType: 'text/plain' });
  let { data, error } = await files.createSignedUrl('s/f.txt', 60, { download: 'named.txt' });
  assert.equal(error, null);
  assert.ok(data.signedUrl.startsWith(`${URL}/storage/v1/object/sign/${id}/s/f.txt?token=`));
  let res = await fetch(data.signedUrl);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'signed body');
  assert.match(res.headers.get('content-disposition'), /^attachment; filename=named.txt/);
  res = await fetch(data.signedUrl.replace(/token=[^.]+\./, 'token=eyJhbGciOiJIUzI1NiJ9.'));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).code, 'InvalidJWT');
  ({ data, error } = await files.createSignedUrls(['s/f.txt', 'nope.txt'], 60));
  assert.equal(error, null);
  assert.equal(data[0].error, null);
  assert.equal(data[1].signedUrl, null);
  ({ data, error } = await files.createSignedUploadUrl('up/new.txt'));
  assert.equal(error, null);
  const anonFiles = client().storage.from(id);
  ({ data, error } = await anonFiles.uploadToSignedUrl('up/new.txt', data.token, new Blob(['by token'])));
  assert.equal(error, null);
  assert.equal(await (await files.download('up/new.txt')).data.text(), 'by token');
  const publicUrl = anonFiles.getPublicUrl('s/f.txt').data.publicUrl;
  assert.equal(publicUrl, `${URL}/storage/v1/object/public/${id}/s/f.txt`);
  res = await fetch(publicUrl);
  assert.equal(await res.text(), 'signed body');
  assert.ok(res.headers.get('etag'));
  const again = await fetch(publicUrl, { headers: { 'if-none-match': res.headers.get('etag') } });
  assert.equal(again.status, 304);
});

test('image transforms: authenticated, public and signed', async () => {
  const id = await newBucket({ public: true });
  const files = admin().storage.from(id);
  await files.upload('img.png', PNG_40x20, { contentType: 'image/png' });
  let { data, error } = await files.download('img.png', { transform: { width: 20, height: 20, resize: 'cover' } });
  assert.equal(error, null);
  assert.deepEqual(pngSize(Buffer.from(await data.arrayBuffer())), [20, 20]);
  const url = files.getPublicUrl('img.png', { transform: { width: 10, height: 10, resize: 'contain' } }).data.publicUrl;
  const res = await fetch(url);
  assert.deepEqual(pngSize(Buffer.from(await res.arrayBuffer())), [10, 5]);
  ({ data, error } = await files.createSignedUrl('img.png', 60, { transform: { width: 8, height: 8, format: 'webp' } }));
  assert.equal(error, null);
  const webp = Buffer.from(await (await fetch(data.signedUrl)).arrayBuffer());
  assert.equal(webp.subarray(0, 4).toString(), 'RIFF');
  assert.equal(webp.subarray(8, 12).toString(), 'WEBP');
});

test('Supabase wording and shapes: emptyBucket, listV2 folders, info metadata, HTML as text', async () => {
  const id = await newBucket({ public: true });
  const files = admin().storage.from(id);
  await files.upload('fold/a.txt', Buffer.from('a'), { contentType: 'text/plain' });
  await files.upload('page.html', Buffer.from('<script>1</script>'), { contentType: 'text/html' });
  let { data, error } = await files.listV2({ with_delimiter: true });
  assert.equal(error, null);
  assert.deepEqual(data.folders.map((f) => f.key), ['fold']);
  ({ data, error } = await files.info('fold/a.txt'));
  assert.equal(error, null);
  assert.deepEqual(data.metadata, {});
  const res = await fetch(files.getPublicUrl('page.html').data.publicUrl);
  assert.equal(res.headers.get('content-type'), 'text/plain');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  ({ data, error } = await admin().storage.emptyBucket(id));
  assert.equal(error, null);
  assert.equal(data.message, 'Empty bucket has been queued. Completion may take up to an hour.');
});

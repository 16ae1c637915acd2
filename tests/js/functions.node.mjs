// supabase-js functions.invoke against ownbase's /functions/v1 (run by tests/functions/test_functions.py).
import assert from 'node:assert/strict';
import { FunctionsHttpError, FunctionsRelayError } from '@supabase/supabase-js';
import { client } from './helpers.mjs';

const supabase = client();

// Lambda: JSON in, JSON out, the JWT's claims reach the function.
let { data, error } = await supabase.functions.invoke('hello', { body: { name: 'js' } });
assert.equal(error, null, String(error));
assert.equal(data.message, 'Hello js');
assert.equal(data.role, 'anon');

// Query string and method pass through; GET without a body.
({ data, error } = await supabase.functions.invoke('hello/sub/path?x=1', { method: 'GET' }));
assert.equal(error, null, String(error));
assert.equal(data.path, '/hello/sub/path');
assert.equal(data.query, 'x=1');

// The function's own 4xx is a FunctionsHttpError with its response.
({ data, error } = await supabase.functions.invoke('hello', { body: { status: 422 } }));
assert.ok(error instanceof FunctionsHttpError, String(error));
assert.equal(error.context.status, 422);
assert.deepEqual(await error.context.json(), { error: 'as asked' });

// HTTP target, streamed: text/event-stream comes back as the Response itself.
({ data, error } = await supabase.functions.invoke('api/stream', { method: 'GET' }));
assert.equal(error, null, String(error));
assert.equal(await data.text(), 'data: 0\n\ndata: 1\n\ndata: 2\n\n');

// A relay failure (target down) is a FunctionsRelayError.
({ data, error } = await supabase.functions.invoke('down', { body: {} }));
assert.ok(error instanceof FunctionsRelayError, String(error));

// Local command.
({ data, error } = await supabase.functions.invoke('dev', { body: 'plain text' }));
assert.equal(error, null, String(error));
assert.equal(data.via, 'command');
assert.equal(data.got, 'plain text');
console.log('functions.node.mjs ok');

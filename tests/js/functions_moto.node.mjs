// supabase-js functions.invoke reaching a Lambda function on moto (run by tests/functions/test_moto_lambda.py).
import assert from 'node:assert/strict';
import { client } from './helpers.mjs';
const { data, error } = await client().functions.invoke('echo', { body: { name: 'js' } });
assert.equal(error, null, String(error));
assert.equal(data.version, '2.0');
assert.deepEqual(JSON.parse(data.body), { name: 'js' });
assert.equal(data.requestContext.authorizer.jwt.claims.role, 'anon');
console.log('moto ok');

// Shared helpers for the supabase-js end-to-end tests (run by tests/e2e/test_js.py).
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

export const URL = process.env.OWNBASE_URL;
export const ANON_KEY = process.env.OWNBASE_ANON_KEY;
export const SERVICE_KEY = process.env.OWNBASE_SERVICE_KEY;

// Node 20 has no global WebSocket: hand realtime the `ws` implementation.
export function client(key = ANON_KEY, options = {}) {
  return createClient(URL, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket },
    ...options,
  });
}

export const admin = () => client(SERVICE_KEY);

export function uniqueEmail(tag = 'user') {
  return `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e9)}@example.com`;
}

// Reads ownbase's mail outbox through the real `ownbase mail list` CLI (auth tests only).
import { execFileSync } from 'node:child_process';

export function mailsTo(email) {
  const out = execFileSync(process.env.PYTHON || 'python3',
    ['-m', 'ownbase', 'mail', 'list', '--to', email, '--json', '--limit', '50'],
    { env: { ...process.env, OWNBASE_DATABASE_URL: process.env.OWNBASE_DB_URL }, encoding: 'utf8' });
  return JSON.parse(out);
}

export function lastMail(email, kind) {
  const all = mailsTo(email).filter((m) => !kind || m.kind === kind);
  if (!all.length) throw new Error(`no mail to ${email}`);
  return all[all.length - 1];
}

export const codeOf = (mail) => /code: (\d{6,10})/.exec(mail.text_body)[1];
export const linkOf = (mail) => /(http\S+\/auth\/v1\/verify\?\S+)/.exec(mail.text_body)[1];

// Runs one SQL statement as the database owner (test set-up only), through python's asyncpg.
export function ownerSql(statement, ...args) {
  const script = 'import asyncio, asyncpg, json, os, sys\n'
    + 'async def main():\n'
    + '    c = await asyncpg.connect(os.environ["OWNBASE_DB_URL"])\n'
    + '    try:\n'
    + '        print(await c.execute(sys.argv[1], *json.loads(sys.argv[2])))\n'
    + '    finally:\n'
    + '        await c.close()\n'
    + 'asyncio.run(main())\n';
  return execFileSync(process.env.PYTHON || 'python3', ['-c', script, statement, JSON.stringify(args)],
    { env: process.env, encoding: 'utf8' }).trim();
}

/**
 * Nothing lost under kill -9: the real `npm start` process (bin/local.ts) is SIGKILLed while
 * it holds accepted onboarding events, and restarted on the same .data. Every member must end
 * with exactly one enabled mailbox account, enabled in WeCom, with its `create` audit record;
 * nothing may be parked; and no callback may have been needed again (WeCom does not replay:
 * every event the restarted stack processed was accepted by the killed one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';

const LOCAL = resolve(import.meta.dirname, '../../bin/local.ts');
const TSX = import.meta.resolve('tsx');

interface Running {
  child: ChildProcess;
  baseUrl: string;
  file: { pid: number; baseUrl: string; dynamoEndpoint: string; tables: { inbox: string; audit: string }; credentialsFile: string; adminTokenFile: string };
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

async function start(cwd: string, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, ['--import', TSX, LOCAL], {
    cwd,
    // A short visibility timeout: messages in flight at the kill come back after 3 s, not 30.
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'ERROR', LOCAL_QUEUE_VISIBILITY_SECONDS: '3', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const stackFile = join(cwd, '.data', 'local-stack.json');
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`local stack exited ${child.exitCode}: ${stderr}`);
    if (existsSync(stackFile)) {
      const file = JSON.parse(readFileSync(stackFile, 'utf8')) as Running['file'];
      if (file.pid === child.pid) {
        const ok = await fetch(`${file.baseUrl}/healthz`).then((r) => r.ok, () => false);
        if (ok) return { child, baseUrl: file.baseUrl, file };
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`local stack did not start: ${stderr}`);
}

function kill9(r: Running): Promise<void> {
  return new Promise((ok) => {
    r.child.once('exit', () => ok());
    r.child.kill('SIGKILL');
  });
}

async function createMembers(r: Running, n: number, prefix: string): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < ids.length) {
        const userid = ids[next++]!;
        const res = await fetch(`${r.baseUrl}/_sim/wecom/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userid, name: `员工${userid}`, department: [1] }),
        });
        expect(res.status).toBe(201);
      }
    }),
  );
  return ids;
}

/** The operator endpoints, with the admin token the stack keeps in .data/ (as the CLI does). */
async function admin(r: Running, path: string): Promise<unknown> {
  const token = readFileSync(r.file.adminTokenFile, 'utf8').trim();
  return (await fetch(`${r.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } })).json();
}

async function status(r: Running): Promise<{ queue: { depth: number; deadLetters: number }; metrics: Record<string, number> }> {
  return (await admin(r, '/_local/status')) as never;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function graphUsers(r: Running): Promise<Array<{ employeeId: string | null; accountEnabled: boolean }>> {
  const c = JSON.parse(readFileSync(r.file.credentialsFile, 'utf8')) as { tenantId: string; clientId: string; clientSecret: string };
  const tok = (await (
    await fetch(`${r.baseUrl}/_sim/graph/${c.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: 'https://graph.microsoft.com/.default' }),
    })
  ).json()) as { access_token: string };
  const out: Array<{ employeeId: string | null; accountEnabled: boolean }> = [];
  let url: string | undefined = `${r.baseUrl}/_sim/graph/v1.0/users?$select=id,employeeId,accountEnabled&$top=999`;
  while (url) {
    const page = (await (await fetch(url, { headers: { authorization: `Bearer ${tok.access_token}` } })).json()) as { value: typeof out; '@odata.nextLink'?: string };
    out.push(...page.value);
    url = page['@odata.nextLink'];
  }
  return out;
}

/** The end state every promise of the README needs, checked over the wire and in the tables. */
async function assertConverged(r: Running, ids: string[], killedAt: number) {
  await waitFor('the queue to drain and every member to be onboarded', async () => {
    const s = await status(r);
    if (s.queue.depth > 0) return false;
    const members = (await (await fetch(`${r.baseUrl}/_sim/wecom/users`)).json()) as Array<{ userid: string; enable: number }>;
    return ids.every((id) => members.find((m) => m.userid === id)?.enable === 1);
  });
  const accounts = await graphUsers(r);
  for (const id of ids) {
    const mine = accounts.filter((a) => a.employeeId === id);
    expect(mine, `mailbox accounts of ${id}`).toHaveLength(1);
    expect(mine[0]!.accountEnabled).toBe(true);
  }
  const s = await status(r);
  expect(s.queue.deadLetters).toBe(0);
  expect(await admin(r, '/_local/dlq')).toEqual([]);

  const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: r.file.dynamoEndpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    for (const id of ids) {
      const out = await dynamo.send(
        new QueryCommand({
          TableName: r.file.tables.audit,
          KeyConditionExpression: 'pk = :s',
          ExpressionAttributeValues: { ':s': { S: `user:${id}` } },
        }),
      );
      const actions = (out.Items ?? []).map((i) => `${i.action!.S}:${i.target?.S}`);
      expect(actions.filter((a) => a === 'create:mailbox'), `create audit of ${id}`).toHaveLength(1);
      expect(actions.filter((a) => a === 'enable:wecom'), `gate release audit of ${id}`).toHaveLength(1);
    }
    // No callback resent: every event processed was accepted before the kill.
    const inbox = (await dynamo.send(new ScanCommand({ TableName: r.file.tables.inbox }))).Items ?? [];
    const creates = inbox.filter((i) => i.kind?.S === 'change_contact/create_user');
    expect(creates).toHaveLength(ids.length);
    expect(creates.every((i) => Date.parse(i.receivedAt!.S!) <= killedAt)).toBe(true);
  } finally {
    dynamo.destroy();
  }
}

describe('kill -9 of the local stack', () => {
  it('during a drain of 160 onboardings: restarted on the same .data, every member ends with one account, enabled, audited', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'crash-drain-'));
    try {
      const first = await start(cwd);
      const ids = await createMembers(first, 160, 'd');
      // Let the worker get going, then kill it mid-drain.
      await waitFor('some onboardings done', async () => ((await status(first)).metrics.create ?? 0) >= 10, 60_000);
      const before = await status(first);
      expect(before.queue.depth).toBeGreaterThan(0);
      const killedAt = Date.now();
      await kill9(first);

      const second = await start(cwd);
      await assertConverged(second, ids, killedAt);
      await kill9(second);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 240_000);

  it('right after the callbacks were answered, before any was processed (worker paused)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'crash-paused-'));
    try {
      const first = await start(cwd, { LOCAL_QUEUE_PAUSED: '1' });
      const ids = await createMembers(first, 150, 'p');
      expect((await status(first)).queue.depth).toBe(150);
      const killedAt = Date.now();
      await kill9(first);

      const second = await start(cwd);
      await assertConverged(second, ids, killedAt);
      await kill9(second);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 240_000);
});

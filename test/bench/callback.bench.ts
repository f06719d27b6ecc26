/**
 * WeCom callback benchmark (standalone; `npm run bench -- callback`).
 *  1. crypto + parse + validate per event (signature, AES, envelope + event XML, zod, SHA-256)
 *  2. the whole handler in-process (middy, API GW v2 conversion, receiver) with in-memory ports
 *  3. the Lambda bundle as the CDK builds it (esbuild, minified ESM, node24, tree-shaken):
 *     size raw/gzip and cold module load in a fresh `node` process (median of N), with the
 *     AWS SDK bundled and with @aws-sdk/* external (taken from the runtime), against a naive
 *     bundle of middy + DynamoDB + KMS + SQS clients imported whole.
 * Targets: per event < 0.2 ms; module load < 100 ms; bundle < 400 KB.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { build } from 'esbuild';
import type { SyncMessage } from '../../functions/queue/messages';
import type { InboxEntry } from '../../functions/store/ports';
import { decryptMessage, verifySignature } from '../../functions/wecom/crypto';
import { parseEnvelope, parseEvent, subjectsOf } from '../../functions/wecom/events';
import { buildPost, buildVerify, contactEvent, randomEncodingAESKey } from '../support/wecom-callback-client';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const N_EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const N_LOADS = Number(process.env.BENCH_LOADS ?? 10);
const keys = { token: 'benchtoken0123456789', encodingAESKey: randomEncodingAESKey(), corpId: 'wwbench000000001' };

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(3)} ms`;
const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
const mark = (ok: boolean) => (ok ? 'OK  ' : 'MISS');

function makeRequests(n: number) {
  const kinds = ['create_user', 'update_user', 'delete_user', 'create_party', 'update_tag'];
  return Array.from({ length: n }, (_, i) => {
    const t = kinds[i % kinds.length]!;
    const fields: Record<string, string> =
      t.endsWith('_user') ? { UserID: `user${i}`, Department: '1,2' } : t.endsWith('_party') ? { Id: String(i + 2), ParentId: '1' } : { TagId: '3', AddUserItems: `a${i},b${i}` };
    return buildPost(contactEvent(keys.corpId, t, fields), keys);
  });
}

// ---------------------------------------------------------------- 1. per event

function benchCore() {
  const reqs = makeRequests(N_EVENTS);
  const times: number[] = [];
  let subjects = 0;
  for (const r of reqs.slice(0, 500)) parseEvent(decryptMessage(parseEnvelope(r.body).encrypt, keys)); // warm-up
  for (const r of reqs) {
    const t0 = performance.now();
    const { encrypt } = parseEnvelope(r.body);
    if (!verifySignature(keys.token, r.query.timestamp!, r.query.nonce!, encrypt, r.query.msg_signature)) throw new Error('bad sig');
    const plain = decryptMessage(encrypt, keys);
    const ev = parseEvent(plain);
    subjects += subjectsOf(ev).length;
    createHash('sha256').update(plain).digest('hex');
    times.push(performance.now() - t0);
  }
  const p50 = pct(times, 50);
  const p99 = pct(times, 99);
  console.log(`1. crypto+parse+validate, ${N_EVENTS} events: p50 ${ms(p50)}  p99 ${ms(p99)}   [${mark(p50 < 0.2)} target p50 < 0.2 ms] (${subjects} subjects)`);
}

// ---------------------------------------------------------------- 2. whole handler in-process

async function benchHandler() {
  // The logger reads LOG_LEVEL when first imported: keep the measured loop free of log I/O.
  process.env.LOG_LEVEL ??= 'SILENT';
  const { createWecomCallbackHandler } = await import('../../functions/handlers/wecom-callback');
  const seen = new Map<string, 'pending' | 'enqueued'>();
  let queued = 0;
  const handler = createWecomCallbackHandler({
    keys,
    inbox: {
      record: async (e: InboxEntry) => {
        const s = seen.get(e.id);
        if (!s) return seen.set(e.id, 'pending'), 'new';
        return s === 'enqueued' ? 'duplicate' : 'pending';
      },
      markEnqueued: async (id: string) => void seen.set(id, 'enqueued'),
      listPending: async () => [],
    },
    queue: { enqueue: async (m: SyncMessage[]) => void (queued += m.length) },
  });
  const ctx = {} as Context;
  const ev = (q: Record<string, string>, body: string) =>
    ({
      version: '2.0',
      rawPath: '/wecom/callback',
      headers: { 'content-type': 'text/xml' },
      queryStringParameters: q,
      requestContext: { http: { method: 'POST', path: '/wecom/callback', sourceIp: '127.0.0.1' } },
      body,
      isBase64Encoded: false,
    }) as unknown as APIGatewayProxyEventV2;
  const events = makeRequests(N_EVENTS).map((r) => ev(r.query, r.body));
  for (const e of events.slice(0, 200)) await handler(ev(e.queryStringParameters as Record<string, string>, e.body!), ctx); // warm-up (distinct copies are re-sent below: duplicates)
  seen.clear();
  const times: number[] = [];
  for (const e of events) {
    const t0 = performance.now();
    const res = await handler(e, ctx);
    times.push(performance.now() - t0);
    if (res.body !== 'success') throw new Error(`handler said ${res.statusCode} ${res.body}`);
  }
  console.log(`2. whole handler in-process (middy + API GW v2 + receiver, in-memory ports): p50 ${ms(pct(times, 50))}  p99 ${ms(pct(times, 99))}  (${queued} messages incl. warm-up)`);
}

// ---------------------------------------------------------------- 3. bundles and cold load

interface Variant {
  name: string;
  entry: string;
  external: string[];
  /** A GET verification to run after import (first-invocation wiring), or none. */
  invoke: boolean;
}

async function bundle(v: Variant, outDir: string) {
  const outfile = join(outDir, `${v.name}.mjs`);
  await build({
    entryPoints: [v.entry],
    outfile,
    bundle: true,
    minify: true,
    treeShaking: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    mainFields: ['module', 'main'],
    external: v.external,
    // As NodejsFunction does for ESM: give bundled CommonJS code a `require`.
    banner: { js: "import{createRequire as __cr}from'module';const require=__cr(import.meta.url);" },
    logLevel: 'error',
    absWorkingDir: root,
  });
  const code = readFileSync(outfile);
  return { outfile, raw: code.length, gz: gzipSync(code, { level: 9 }).length };
}

function coldLoad(outfile: string, invoke: boolean, runs: number) {
  const q = buildVerify('1234567890', keys);
  const script = `
    const t0 = performance.now();
    const m = await import(${JSON.stringify(pathToFileURL(outfile).href)});
    const t1 = performance.now();
    let t2 = t1;
    if (${invoke}) {
      const res = await m.handler({ version: '2.0', rawPath: '/', headers: {}, queryStringParameters: ${JSON.stringify(q)},
        requestContext: { http: { method: 'GET', path: '/' } }, isBase64Encoded: false }, {});
      if (res.body !== '1234567890') throw new Error('bad answer ' + JSON.stringify(res));
      t2 = performance.now();
    }
    console.log(JSON.stringify({ load: t1 - t0, first: t2 - t0 }));`;
  const env = {
    ...process.env,
    VITEST: '',
    LOG_LEVEL: 'SILENT',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    WECOM_CORP_ID: keys.corpId,
    WECOM_TOKEN: keys.token,
    WECOM_ENCODING_AES_KEY: keys.encodingAESKey,
    INBOX_TABLE: 'inbox',
    QUEUE_URL: 'http://127.0.0.1:9/000000000000/q.fifo',
    DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
    SQS_ENDPOINT: 'http://127.0.0.1:9',
  };
  delete (env as Record<string, string | undefined>).WECOM_CALLBACK_SECRET_ARN;
  const loads: number[] = [];
  const firsts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, cwd: dirname(outfile), encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    loads.push(r.load);
    firsts.push(r.first);
  }
  return { load: pct(loads, 50), first: pct(firsts, 50) };
}

async function benchBundles() {
  const dir = mkdtempSync(join(tmpdir(), 'callback-bench-'));
  // For the "SDK external" variants: resolve @aws-sdk/* from the project, as the Lambda runtime provides it.
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const naiveEntry = join(dir, 'naive-entry.mjs');
  writeFileSync(
    naiveEntry,
    `import * as middy from '@middy/core';
import * as ddb from '@aws-sdk/client-dynamodb';
import * as kms from '@aws-sdk/client-kms';
import * as sqs from '@aws-sdk/client-sqs';
globalThis.__all = [middy, ddb, kms, sqs];
export const handler = middy.default(async () => ({ statusCode: 200, body: String(Object.keys(globalThis.__all).length) }));
`,
  );
  const handlerEntry = join(root, 'functions/handlers/wecom-callback.ts');
  const variants: Variant[] = [
    { name: 'callback (AWS SDK bundled)', entry: handlerEntry, external: [], invoke: true },
    { name: 'callback (@aws-sdk/* external, from runtime)', entry: handlerEntry, external: ['@aws-sdk/*'], invoke: true },
    { name: 'naive middy+DynamoDB+KMS+SQS (SDK bundled)', entry: naiveEntry, external: [], invoke: false },
  ];
  console.log(`3. Lambda bundles (esbuild minified ESM, node24, tree-shaken, mainFields module,main); cold load = median of ${N_LOADS} fresh node processes (${process.version})`);
  try {
    for (const v of variants) {
      const b = await bundle(v, dir);
      const t = coldLoad(b.outfile, v.invoke, N_LOADS);
      const isCallback = v.name.startsWith('callback');
      const first = v.invoke ? `; import + first GET (wiring, lazy clients, no network) ${ms(t.first)}` : '';
      const targets = isCallback ? `   [${mark(b.raw < 400 * 1024)} < 400 KB] [${mark(t.load < 100)} load < 100 ms]` : '';
      console.log(`   ${v.name.padEnd(46)} ${kb(b.raw).padStart(9)} raw ${kb(b.gz).padStart(9)} gz   module load ${ms(t.load)}${first}${targets}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

benchCore();
await benchHandler();
await benchBundles();

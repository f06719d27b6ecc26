/**
 * WeCom callback benchmark (standalone; `npm run bench -- callback`).
 *  1. crypto + parse + validate per event (signature, AES, envelope + event XML, zod, SHA-256)
 *  2. verify + decrypt against Tencent's official `@wecom/crypto` (a devDependency, for this
 *     comparison only) and against the floor (bare node:crypto with the key imported once),
 *     at 600 B and 4 KB messages, interleaved in batches so drift hits all three alike
 *  3. the whole handler in-process (middy, API GW v2 conversion, receiver) with in-memory ports
 *  4. every Lambda bundle as lib/functions.ts builds it (esbuildOptions): size and the limits
 *  5. cold load in fresh `node` processes (median of N): the callback as shipped (split, SDK
 *     from the runtime) against the previous single-file build, each with and without
 *     --enable-source-maps; the sync worker with the SDK from the runtime against bundled
 * The CPU share of this process and of the rest of the machine is printed at the end: figures
 * taken while something else used the CPU are not comparable.
 */
import { execFileSync } from 'node:child_process';
import { createDecipheriv, createHash, createSecretKey, timingSafeEqual } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { decrypt as officialDecrypt, getSignature as officialSignature } from '@wecom/crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { build, type BuildOptions } from 'esbuild';
import { esbuildOptions, HANDLERS, type HandlerName } from '../../lib/functions';

/** The deployment's mailbox provider the bundles are built for (each bundle carries only its adapter). */
const PROVIDER = process.env.BENCH_PROVIDER ?? 'graph';
import type { SyncMessage } from '../../functions/queue/messages';
import type { InboxEntry } from '../../functions/store/ports';
import { decryptMessage, verifySignature } from '../../functions/wecom/crypto';
import { parseEnvelope, parseEvent, subjectsOf } from '../../functions/wecom/events';
import { buildPost, buildVerify, contactEvent, randomEncodingAESKey } from '../support/wecom-callback-client';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const N_EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const N_LOADS = Number(process.env.BENCH_LOADS ?? 15);
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
  console.log(`1. crypto+parse+validate, ${N_EVENTS} events: p50 ${ms(p50)}  p99 ${ms(p99)}   [${mark(p50 <= 0.05)} target p50 ≤ 0.05 ms] (${subjects} subjects)`);
}

// ---------------------------------------------------------------- 2. verify + decrypt against @wecom/crypto

/** A contact event padded with a long <Name> to about `bytes` of XML. */
function eventOfSize(bytes: number): string {
  const base = contactEvent(keys.corpId, 'update_user', { UserID: 'zhangsan' });
  return base.replace('</xml>', `<Name><![CDATA[${'x'.repeat(Math.max(0, bytes - base.length - 26))}]]></Name></xml>`);
}

function benchVersusOfficial() {
  console.log('2. verify + decrypt of one POST, µs per call (median of 200 interleaved batches of 50): ours vs @wecom/crypto vs the floor');
  // The floor: what node:crypto costs with nothing but the work (key imported once, no checks).
  const raw = Buffer.from(keys.encodingAESKey + '=', 'base64');
  const floorKey = createSecretKey(raw);
  const floorIv = raw.subarray(0, 16);
  for (const size of [600, 4096]) {
    const inner = eventOfSize(size);
    const { query: q, body } = buildPost(inner, keys);
    const encrypt = parseEnvelope(body).encrypt;
    const ts = q.timestamp!;
    const nonce = q.nonce!;
    const sig = q.msg_signature!;
    const impls: Record<'ours' | 'official' | 'floor', () => string> = {
      ours: () => {
        if (!verifySignature(keys.token, ts, nonce, encrypt, sig)) throw new Error('bad sig');
        return decryptMessage(encrypt, keys);
      },
      // As a caller of the official library must use it: compare the signature, decrypt,
      // compare the receive id (the library returns it and leaves the check to its caller).
      official: () => {
        if (officialSignature(keys.token, ts, nonce, encrypt) !== sig) throw new Error('bad sig');
        const { message, id } = officialDecrypt(keys.encodingAESKey, encrypt);
        if (id !== keys.corpId) throw new Error('bad receive id');
        return message;
      },
      floor: () => {
        const expected = createHash('sha1').update([keys.token, ts, nonce, encrypt].sort().join('')).digest();
        if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) throw new Error('bad sig');
        const d = createDecipheriv('aes-256-cbc', floorKey, floorIv);
        d.setAutoPadding(false);
        const plain = d.update(Buffer.from(encrypt, 'base64'));
        const len = plain.readUInt32BE(16);
        return plain.toString('utf8', 20, 20 + len);
      },
    };
    for (const f of Object.values(impls)) if (f() !== inner) throw new Error('implementations disagree');
    const per: Record<string, number[]> = { ours: [], official: [], floor: [] };
    const BATCH = 50;
    for (let round = 0; round < 220; round++) {
      for (const [name, f] of Object.entries(impls)) {
        const t0 = performance.now();
        for (let i = 0; i < BATCH; i++) f();
        if (round >= 20) per[name]!.push(((performance.now() - t0) * 1000) / BATCH); // first 20 rounds: warm-up
      }
    }
    const [o, off, fl] = (['ours', 'official', 'floor'] as const).map((n) => pct(per[n]!, 50));
    const ratio = o! / off!;
    console.log(
      `   ${String(Buffer.byteLength(inner)).padStart(5)} B message (${encrypt.length} chars of base64): ours ${o!.toFixed(1)} µs, @wecom/crypto ${off!.toFixed(1)} µs, floor ${fl!.toFixed(1)} µs` +
        ` → ours = ${ratio.toFixed(2)}× official, ${(o! / fl!).toFixed(2)}× floor   [${mark(ratio <= 1)} ≤ 1.0× official]`,
    );
  }
}

// ---------------------------------------------------------------- 3. whole handler in-process

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
  console.log(`3. whole handler in-process (middy + API GW v2 + receiver, in-memory ports): p50 ${ms(pct(times, 50))}  p99 ${ms(pct(times, 99))}  (${queued} messages incl. warm-up)`);
}

// ---------------------------------------------------------------- 4. bundles, 5. cold load

interface Built {
  dir: string;
  /** Every .mjs file (entry and chunks). */
  total: number;
  entry: number;
  gz: number;
  files: number;
  /** Static `import` of an external @aws-sdk package by the entry: loaded at module load. */
  sdkAtLoad: number;
}

async function bundle(name: string, entry: string, options: BuildOptions, outDir: string): Promise<Built> {
  const dir = join(outDir, name);
  mkdirSync(dir, { recursive: true });
  const where = options.splitting ? { outdir: dir } : { outfile: join(dir, 'index.mjs') };
  const r = await build({ ...options, entryPoints: { index: entry }, ...where, metafile: true, logLevel: 'error', absWorkingDir: root });
  const outputs = Object.entries(r.metafile!.outputs).filter(([f]) => f.endsWith('.mjs'));
  const main = outputs.find(([f]) => f.endsWith('/index.mjs'))![1];
  let total = 0;
  let gz = 0;
  for (const [f, o] of outputs) {
    total += o.bytes;
    gz += gzipSync(readFileSync(join(root, f)), { level: 9 }).length;
  }
  const sdkAtLoad = main.imports.filter((i) => i.external && i.kind === 'import-statement' && i.path.startsWith('@aws-sdk/')).length;
  return { dir, total, entry: main.bytes, gz, files: outputs.length, sdkAtLoad };
}

const LIMITS: Partial<Record<HandlerName, number>> = { 'wecom-callback': 400, 'sync-worker': 600, 'mailbox-events': 200 };

async function benchBundles(outDir: string) {
  console.log(`4. Lambda bundles as lib/functions.ts builds them for provider '${PROVIDER}' (esbuildOptions: minified ESM, node24; split where SPLIT says; BENCH_PROVIDER to change)`);
  for (const name of HANDLERS) {
    const b = await bundle(name, join(root, 'functions/handlers', `${name}.ts`), esbuildOptions(name, PROVIDER), outDir);
    const limit = LIMITS[name] ?? 1024;
    const split = b.files > 1 ? ` (entry ${kb(b.entry)} + ${b.files - 1} chunks)` : '';
    console.log(`   ${name.padEnd(20)} ${kb(b.total).padStart(9)} ${kb(b.gz).padStart(9)} gz${split}   [${mark(b.total <= limit * 1024)} ≤ ${limit} KB]`);
  }
}

interface LoadCase {
  label: string;
  b: Built;
  invoke: 'callback' | 'worker';
  maps: boolean;
}

/** One fresh `node` process: import the bundle, then run its first invocation; ms for each. */
function loadOnce(c: LoadCase): { load: number; first: number } {
  const q = buildVerify('1234567890', keys);
  const invoke =
    c.invoke === 'callback'
      ? `const res = await m.handler({ version: '2.0', rawPath: '/', headers: {}, queryStringParameters: ${JSON.stringify(q)},
          requestContext: { http: { method: 'GET', path: '/' } }, isBase64Encoded: false }, {});
         if (res.body !== '1234567890') throw new Error('bad answer ' + JSON.stringify(res));`
      : `const res = await m.handler({ Records: [] }, {}); if (!res || !Array.isArray(res.batchItemFailures)) throw new Error('bad answer');`;
  const script = `
    const t0 = performance.now();
    const m = await import(${JSON.stringify(pathToFileURL(join(c.b.dir, 'index.mjs')).href)});
    const t1 = performance.now();
    ${invoke}
    console.log(JSON.stringify({ load: t1 - t0, first: performance.now() - t0 }));`;
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
    DLQ_URL: 'http://127.0.0.1:9/000000000000/dlq.fifo',
    DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
    SQS_ENDPOINT: 'http://127.0.0.1:9',
  };
  delete (env as Record<string, string | undefined>).WECOM_CALLBACK_SECRET_ARN;
  delete (env as Record<string, string | undefined>).NODE_OPTIONS;
  const args = [...(c.maps ? ['--enable-source-maps'] : []), '--input-type=module', '-e', script];
  // stderr piped (it surfaces in the error if a run fails): the metrics logger warns on every empty flush.
  const out = execFileSync(process.execPath, args, { env, cwd: c.b.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').pop()!);
}

async function benchColdLoad(outDir: string) {
  console.log(`5. cold load, median of ${N_LOADS} fresh node processes per case, the cases interleaved (${process.version}); the runtime's SDK is played by node_modules`);
  const callback = join(root, 'functions/handlers/wecom-callback.ts');
  const shipped = esbuildOptions('wecom-callback', PROVIDER);
  const { splitting: _s, entryNames: _e, chunkNames: _c, outExtension: _o, ...single } = shipped;
  const split = await bundle('callback-split', callback, shipped, outDir);
  const oneFile = await bundle('callback-single', callback, single, outDir);
  const worker = join(root, 'functions/handlers/sync-worker.ts');
  const wRuntime = await bundle('worker-sdk-runtime', worker, esbuildOptions('sync-worker', PROVIDER), outDir);
  const wBundled = await bundle('worker-sdk-bundled', worker, { ...esbuildOptions('sync-worker', PROVIDER), external: [] }, outDir);
  const cases: LoadCase[] = [];
  for (const maps of [false, true]) {
    const m = maps ? ' + --enable-source-maps' : '';
    cases.push({ label: `callback as shipped (split)${m}`, b: split, invoke: 'callback', maps });
    cases.push({ label: `callback before (one file)${m}`, b: oneFile, invoke: 'callback', maps });
    cases.push({ label: `sync-worker, SDK from the runtime (shipped)${m}`, b: wRuntime, invoke: 'worker', maps });
    cases.push({ label: `sync-worker, SDK bundled (before)${m}`, b: wBundled, invoke: 'worker', maps });
  }
  const runs = cases.map(() => ({ load: [] as number[], first: [] as number[] }));
  for (let r = 0; r < N_LOADS; r++) {
    cases.forEach((c, i) => {
      const t = loadOnce(c);
      runs[i]!.load.push(t.load);
      runs[i]!.first.push(t.first);
    });
  }
  cases.forEach((c, i) => {
    const first = c.invoke === 'callback' ? 'import + first GET (wiring, clients, no network)' : 'import + first (empty) batch';
    const sdk = c.invoke === 'callback' ? `  SDK imports at load: ${c.b.sdkAtLoad}` : '';
    console.log(`   ${c.label.padEnd(62)} ${kb(c.b.total).padStart(9)}${sdk}   module load ${ms(pct(runs[i]!.load, 50))}; ${first} ${ms(pct(runs[i]!.first, 50))}`);
  });
}

function cpuTimes() {
  const all = cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
  const self = process.cpuUsage();
  return { busyMs: all, selfMs: (self.user + self.system) / 1000, at: performance.now() };
}

const t0 = cpuTimes();
benchCore();
benchVersusOfficial();
await benchHandler();
const outDir = mkdtempSync(join(tmpdir(), 'callback-bench-'));
// The SDK left external resolves from the project, as the Lambda runtime provides it.
symlinkSync(join(root, 'node_modules'), join(outDir, 'node_modules'), 'dir');
const t1 = cpuTimes();
try {
  await benchBundles(outDir);
  await benchColdLoad(outDir);
} finally {
  rmSync(outDir, { recursive: true, force: true });
}
const t2 = cpuTimes();
// Sections 1–3 run in this process; the machine's other CPU use during them is what matters
// for those figures. (Sections 4–5 run esbuild and child processes, so "others" includes them.)
const wall = (t1.at - t0.at) / 1000;
const others = Math.max(0, t1.busyMs - t0.busyMs - (t1.selfMs - t0.selfMs)) / 1000;
console.log(
  `CPU during 1–3: this process ${((t1.selfMs - t0.selfMs) / 1000).toFixed(1)} s, the rest of the machine ${others.toFixed(1)} s over ${wall.toFixed(1)} s wall` +
    ` (${((100 * others) / (wall * cpus().length)).toFixed(0)} % of ${cpus().length} cores); 4–5: ${((t2.at - t1.at) / 1000).toFixed(1)} s wall, machine ${(((t2.busyMs - t1.busyMs) / 1000 / ((t2.at - t1.at) / 1000) / cpus().length) * 100).toFixed(0)} % busy`,
);

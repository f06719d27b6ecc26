/**
 * The Lambda bundles as `cdk synth` builds them (local esbuild, lib/functions.ts): size limits,
 * code splitting where it is promised, and the source-map decision. One synth with bundling
 * for the file; skipped with INFRA_TEST_BUNDLING=0 (assets are placeholders then).
 *
 * A bundle's size is every .mjs file in its asset — the entry and its chunks — since the
 * first invocation reads them all: splitting moves code out of INIT, it does not shrink it.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../../lib/app';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER, esbuildOptions, HANDLERS, SOURCE_MAPS, SPLIT, type HandlerName } from '../../lib/functions';
import { logicalId, synth, type Synthesized } from './synth';

const BUNDLING = process.env.INFRA_TEST_BUNDLING !== '0';
const KB = 1024;
/** Issue 16: every bundle ≤ 1 MB; the worker ≤ 600 KB; the receivers small (cold GET within 1 s). */
const LIMIT_KB: Record<string, number> = { 'sync-worker': 600, 'mailbox-events': 200, 'wecom-callback': 400 };
const limitOf = (n: HandlerName) => (LIMIT_KB[n] ?? 1024) * KB;

let s: Synthesized;
beforeAll(() => {
  if (BUNDLING) s = synth({ bundling: true });
}, 240_000);
afterAll(() => s?.cleanup());

/** The asset directory of a handler's function: Code.S3Key is '<asset hash>.zip', the bundle sits in asset.<hash>/. */
function assetDir(n: HandlerName): string {
  const id = logicalId(s.stack, s.stack.functions[n].fn);
  const hash = String(s.json.Resources[id]!.Properties.Code.S3Key).replace(/\.zip$/, '');
  return join(s.outdir, `asset.${hash}`);
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/** A static `import … from "@aws-sdk/…"` (loaded with the module), not a dynamic `import("@aws-sdk/…")`. */
const STATIC_SDK_IMPORT = /(?:^|[;}\n])\s*import\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']@aws-sdk\//;

describe.skipIf(!BUNDLING)('Lambda bundles (as cdk synth builds them)', () => {
  it('every bundle is within its size limit (all .mjs files of the asset)', () => {
    const sizes: Record<string, number> = {};
    for (const n of HANDLERS) {
      const code = files(assetDir(n)).filter((f) => f.endsWith('.mjs'));
      expect(code.length, n).toBeGreaterThan(0);
      sizes[n] = code.reduce((sum, f) => sum + statSync(f).size, 0);
    }
    const over = HANDLERS.filter((n) => sizes[n]! > limitOf(n)).map((n) => `${n}: ${(sizes[n]! / KB).toFixed(1)} KB > ${limitOf(n) / KB} KB`);
    expect(over).toEqual([]);
  });

  it('split handlers load no SDK client at INIT: the entry imports none, its chunks are read on first use', () => {
    expect(SPLIT.has('wecom-callback')).toBe(true);
    for (const n of SPLIT) {
      const dir = assetDir(n);
      const entry = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(entry.startsWith(ESM_REQUIRE_BANNER), n).toBe(true);
      expect(STATIC_SDK_IMPORT.test(entry), `${n}: static @aws-sdk import in index.mjs`).toBe(false);
      // The lazily wired modules survived bundling as dynamic imports of chunk files: esbuild
      // names shared code `chunk-<hash>`, every other chunk is the target of an import() in the
      // entry (`./chunks/x.mjs`) or in another chunk (`./x.mjs`) …
      const chunks = files(join(dir, 'chunks')).filter((f) => f.endsWith('.mjs'));
      const lazy = chunks.map((c) => relative(join(dir, 'chunks'), c)).filter((c) => !c.startsWith('chunk-'));
      expect(lazy.length, n).toBeGreaterThan(0);
      expect(entry, n).toContain(`import("./chunks/`);
      const all = [entry, ...chunks.map((c) => readFileSync(c, 'utf8'))].join('\n');
      for (const c of lazy) expect(all.includes(`import("./chunks/${c}")`) || all.includes(`import("./${c}")`), `${n}: import() of ${c}`).toBe(true);
      // … and that is where the SDK clients are imported.
      expect(chunks.some((c) => STATIC_SDK_IMPORT.test(readFileSync(c, 'utf8'))), n).toBe(true);
    }
  });

  it("a function carries its deployment's mailbox adapter only (graph here): no Google, Exmail or LDAP code", () => {
    // Strings only each adapter's code holds (checked against the sources below).
    const markers = { google: 'X-Goog-Channel-Token', exmail: 'log/operation', ldap: 'objectGUID' };
    for (const n of ['sync-worker', 'reconcile', 'grace-deleter', 'mailbox-events'] as const) {
      const code = files(assetDir(n)).filter((f) => f.endsWith('.mjs')).map((f) => readFileSync(f, 'utf8')).join('\n');
      if (n !== 'mailbox-events') expect(code, n).toContain('graph.microsoft.com');
      for (const [p, marker] of Object.entries(markers)) expect([n, p, code.includes(marker)]).toEqual([n, p, false]);
    }
    const google = readFileSync(join(PROJECT_ROOT, 'functions/mailbox/google/notifications.ts'), 'utf8');
    const exmail = readFileSync(join(PROJECT_ROOT, 'functions/mailbox/exmail/feed.ts'), 'utf8');
    const ldap = readFileSync(join(PROJECT_ROOT, 'functions/mailbox/ldap/wire.ts'), 'utf8');
    expect([google.includes(markers.google), exmail.includes(`'${markers.exmail}'`), ldap.includes(markers.ldap)]).toEqual([true, true, true]);
  });

  it('the pattern that spots a static SDK import tells static from dynamic', () => {
    expect(STATIC_SDK_IMPORT.test('import{SQSClient as a}from"@aws-sdk/client-sqs";')).toBe(true);
    expect(STATIC_SDK_IMPORT.test('var x=1;import*as b from"@aws-sdk/client-dynamodb";')).toBe(true);
    expect(STATIC_SDK_IMPORT.test('let a=await import("@aws-sdk/client-sqs");')).toBe(false);
  });

  it('source maps: shipped for offline decoding, not enabled at run time (README, Decisions)', () => {
    for (const n of HANDLERS) {
      expect(existsSync(join(assetDir(n), 'index.mjs.map')), n).toBe(SOURCE_MAPS.ship);
      const env = s.json.Resources[logicalId(s.stack, s.stack.functions[n].fn)]!.Properties.Environment?.Variables ?? {};
      expect(String(env.NODE_OPTIONS ?? '').includes('--enable-source-maps'), n).toBe(SOURCE_MAPS.enableAtRuntime);
    }
  });
});

describe.skipIf(!BUNDLING)('bundles of the other providers (esbuild as lib/functions.ts configures it, without a synth)', () => {
  // The synth above is a Graph deployment; each provider's bundle carries its own adapter
  // (LDAP's brings ldapts). The functions that load the adapter, built per provider.
  it.each(['google', 'exmail', 'ldap'])('%s: the adapter-carrying functions stay within their limits', async (provider) => {
    const { build } = await import('esbuild');
    const over: string[] = [];
    for (const n of ['sync-worker', 'reconcile', 'subscriptions', 'grace-deleter', 'health'] as const) {
      const r = await build({ ...esbuildOptions(n, provider), entryPoints: [join(PROJECT_ROOT, 'functions', 'handlers', `${n}.ts`)], write: false, sourcemap: false, logLevel: 'error' });
      const size = r.outputFiles.reduce((sum, f) => sum + (f.path.endsWith('.map') ? 0 : f.contents.byteLength), 0);
      if (size > limitOf(n)) over.push(`${n}: ${(size / KB).toFixed(1)} KB > ${limitOf(n) / KB} KB`);
    }
    expect(over).toEqual([]);
  }, 120_000);
});

describe('imports that decide bundle size (checked without bundling)', () => {
  const sources = readdirSync(join(PROJECT_ROOT, 'functions'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `functions/${f}`, text: readFileSync(join(PROJECT_ROOT, 'functions', f), 'utf8') }));

  it("zod is imported as a namespace: `import { z } from 'zod'` keeps every locale (~360 KB more)", () => {
    expect(sources.filter((s) => /import\s*\{\s*z\s*\}\s*from\s*['"]zod['"]/.test(s.text)).map((s) => s.file)).toEqual([]);
  });

  it('libphonenumber-js is imported with one metadata flavour, /max (two flavours are bundled twice)', () => {
    const flavours = new Set(sources.flatMap((s) => [...s.text.matchAll(/from\s*['"](libphonenumber-js(?:\/[a-z]+)?)['"]/g)].map((m) => m[1])));
    expect([...flavours]).toEqual(['libphonenumber-js/max']);
  });
});

#!/usr/bin/env -S npx tsx
/**
 * wecom-sync — the operator CLI. `npm run cli -- <command>` or `npx tsx bin/wecom-sync.ts`.
 * Against the local stack by default; `--stack NAME [--region R]` for a deployed one.
 */
import { parseArgs } from 'node:util';
import { localeFromEnv, message, translator, type Translate } from '../functions/core/messages';

// The Lambda logger writes JSON lines to stdout; on a terminal only real problems matter,
// and stdout must stay clean for --json. Set before the domain modules load.
process.env.LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_LOGGER_LOG_EVENT ??= 'false';

/** The usage text in English (`--help` prints it in the terminal's language: LANG=zh_CN.UTF-8 → Chinese). */
export const HELP = message('en', 'cli.help');

const OPTIONS = {
  stack: { type: 'string' },
  region: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  repair: { type: 'boolean' },
  apply: { type: 'boolean' },
  confirm: { type: 'boolean' },
  source: { type: 'string' },
  out: { type: 'string' },
  template: { type: 'string' },
  subject: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  id: { type: 'string' },
  all: { type: 'boolean' },
  port: { type: 'string' },
  'no-open': { type: 'boolean' },
} as const;

/** Which options each command accepts (besides the global ones). */
const ACCEPTS: Record<string, string[]> = {
  reconcile: ['repair', 'apply', 'confirm'],
  'export-csv': ['source', 'out'],
  'import-csv': ['template', 'apply'],
  audit: ['subject', 'since', 'limit', 'all'],
  dlq: ['id'],
  approvals: ['all'],
  status: [],
  'local-token': [],
  'demo-offboard': [],
  console: ['port', 'no-open'],
};
const GLOBAL = ['stack', 'region', 'data-dir', 'json', 'help'];

function usageProblem(
  t: Translate,
  command: string,
  rest: string[],
  v: { region?: string; stack?: string; subject?: string; since?: string; limit?: string; source?: string; template?: string; repair?: boolean; apply?: boolean; confirm?: boolean; all?: boolean; port?: string },
): string | undefined {
  if (v.region && !v.stack) return t('cli.usage.regionNeedsStack');
  if (command === 'reconcile' && (v.apply || v.confirm) && !v.repair) return t('cli.usage.applyNeedsRepair');
  if (command === 'dlq' && rest[0] !== 'list' && rest[0] !== 'redrive') return t('cli.usage.dlqSub');
  if (command === 'approvals') {
    const [sub, ...ids] = rest;
    if (sub !== 'list' && sub !== 'approve' && sub !== 'reject') return t('cli.usage.approvalsSub');
    if (sub === 'list' && (ids.length || v.all)) return t('cli.usage.approvalsListArgs');
    if (sub !== 'list' && Boolean(v.all) === ids.length > 0) return t('cli.usage.approvalsIds', { sub });
    if (ids.some((id) => !/^(user:)?[A-Za-z0-9_.@-]{1,64}$/.test(id))) return t('cli.usage.approvalsIdShape');
  }
  if (command === 'audit') {
    const sub = rest[0];
    if (sub === undefined) {
      if (!v.subject) return t('cli.usage.auditNeedsSubject');
      if (v.all) return t('cli.usage.allWithVerify');
    } else if (sub === 'verify') {
      if (Boolean(v.all) === Boolean(v.subject)) return t('cli.usage.verifyScope');
      if (v.since || v.limit) return t('cli.usage.verifyNoSince');
    } else if (sub === 'digest') {
      if (v.subject || v.all || v.since || v.limit) return t('cli.usage.digestNoOptions');
    } else return t('cli.usage.auditUnknownSub', { sub });
  }
  if (command === 'import-csv' && !rest[0]) return t('cli.usage.importNeedsFile');
  if (command === 'demo-offboard' && !rest[0]) return t('cli.usage.demoNeedsUser');
  if (command === 'export-csv' && v.source && !['wecom', 'mailbox'].includes(v.source)) return t('cli.usage.source');
  if (command === 'import-csv' && v.template && !['wecom', 'm365'].includes(v.template)) return t('cli.usage.template');
  if (command === 'console' && v.port !== undefined && !(/^\d{1,5}$/.test(v.port) && Number(v.port) <= 65535)) return t('cli.usage.port');
  const extraPositionals =
    command === 'approvals' ? false : command === 'dlq' || command === 'import-csv' || command === 'demo-offboard' || command === 'audit' ? rest.length > 1 : rest.length > 0;
  if (extraPositionals) return t('cli.usage.extraArgs', { args: rest.join(' ') });
  return undefined;
}

export interface MainOptions {
  io?: import('./cli/output').Io;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  const { processIo } = await import('./cli/output');
  // An Io handed in without a locale speaks English (tests); the terminal follows LANG.
  const io = opts.io ? opts.io : opts.env ? { ...processIo, locale: localeFromEnv(opts.env) } : processIo;
  const t = translator(io.locale ?? 'en');
  const seeHelp = `\n${t('cli.seeHelp')}`;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`wecom-sync: ${(err as Error).message}${seeHelp}`);
    return 64;
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help || !command) {
    (v.help ? io.out : io.err)(t('cli.help').trimEnd());
    return v.help ? 0 : 64;
  }
  if (!(command in ACCEPTS)) {
    io.err(`wecom-sync: ${t('cli.unknownCommand', { command })}${seeHelp}`);
    return 64;
  }
  const extra = Object.keys(v).filter((k) => !GLOBAL.includes(k) && !ACCEPTS[command]!.includes(k));
  if (extra.length) {
    io.err(`wecom-sync ${command}: ${t('cli.notAccepted', { options: extra.map((k) => `--${k}`).join(', ') })}`);
    return 64;
  }

  // Usage problems first: no need to load anything or reach a stack to say an option is wrong.
  const usage = usageProblem(t, command, rest, v);
  if (usage) {
    io.err(`wecom-sync ${command}: ${usage}${seeHelp}`);
    return 64;
  }
  const region = v.region;

  const commands = await import('./cli/commands');
  const { CliError, localTarget, stackTarget } = await import('./cli/target');
  let target: Awaited<ReturnType<typeof localTarget>> | undefined;
  try {
    target = v.stack
      ? await stackTarget({ stack: v.stack, ...(v.region ? { region: v.region } : {}) })
      : await localTarget({ ...(v['data-dir'] ? { dataDir: v['data-dir'] } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.env ? { env: opts.env } : {}) });
    switch (command) {
      case 'reconcile':
        return await commands.reconcileCommand(target, { repair: v.repair, apply: v.apply, confirm: v.confirm, json: v.json, ...(region ? { region } : {}) }, io);
      case 'audit':
        if (rest[0] === 'verify') return await commands.auditVerifyCommand(target, { subject: v.subject, all: v.all, json: v.json }, io);
        if (rest[0] === 'digest') return await commands.auditDigestCommand(target, { json: v.json }, io);
        return await commands.auditCommand(target, { subject: v.subject, since: v.since, limit: v.limit, json: v.json }, io);
      case 'dlq':
        return await commands.dlqCommand(target, rest[0], { id: v.id, json: v.json }, io);
      case 'approvals':
        return await commands.approvalsCommand(target, rest[0]!, { ids: rest.slice(1), all: v.all, json: v.json, ...(region ? { region } : {}) }, io);
      case 'status':
        return await commands.statusCommand(target, { json: v.json }, io);
      case 'export-csv':
        return await commands.exportCsvCommand(target, { source: v.source, out: v.out }, io);
      case 'import-csv':
        return await commands.importCsvCommand(target, { file: rest[0], template: v.template, apply: v.apply, json: v.json, ...(region ? { region } : {}) }, io);
      case 'local-token':
        return await commands.localTokenCommand(target, io);
      case 'demo-offboard':
        return await commands.demoOffboardCommand(target, rest[0], io);
      case 'console':
        return await commands.consoleCommand(target, { ...(v.port ? { port: Number(v.port) } : {}), open: !v['no-open'], ...(region ? { region } : {}) }, io);
    }
    return 64;
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`wecom-sync: ${err.message}`);
      return err.exitCode;
    }
    const { redactText } = await import('../functions/core/redact');
    io.err(`wecom-sync: ${t('cli.failed', { command, error: redactText(err instanceof Error ? `${err.name}: ${err.message}` : String(err)) })}`);
    return 1;
  } finally {
    await target?.close();
  }
}

// Run when executed (not when imported by a test).
const invoked = process.argv[1] ? new URL(`file://${process.argv[1]}`).pathname : '';
if (import.meta.url.endsWith('/bin/wecom-sync.ts') && (invoked.endsWith('/bin/wecom-sync.ts') || invoked.endsWith('/wecom-sync'))) {
  process.exitCode = await main(process.argv.slice(2));
}

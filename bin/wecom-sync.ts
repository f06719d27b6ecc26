#!/usr/bin/env -S npx tsx
/**
 * wecom-sync — the operator CLI. `npm run cli -- <command>` or `npx tsx bin/wecom-sync.ts`.
 * Against the local stack by default; `--stack NAME [--region R]` for a deployed one.
 */
import { parseArgs } from 'node:util';

// The Lambda logger writes JSON lines to stdout; on a terminal only real problems matter,
// and stdout must stay clean for --json. Set before the domain modules load.
process.env.LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_LOGGER_LOG_EVENT ??= 'false';

export const HELP = `wecom-sync — operate the WeCom ⇄ mailbox sync

usage: wecom-sync <command> [options]

commands
  reconcile [--repair] [--apply] [--confirm] [--json]
      Compare every WeCom person and department with the mailbox directory; write the
      report (CSV + JSON; .data/reports/ locally, S3 for a deployed stack).
      --repair   converge the differences through the sync engine — a DRY RUN unless --apply
      --apply    really write (repair only)
      --confirm  let a repair disable/delete more people than the deletion guard allows
  export-csv [--source wecom|mailbox] [--out FILE]
      Export the directory in the official import template (WeCom or Microsoft 365).
  import-csv FILE [--template wecom|m365] [--apply] [--json]
      Validate a CSV in the official template; with --apply, bootstrap the mailbox accounts
      of the listed people through the sync engine (dry run by default).
  audit --subject ID [--since ISO] [--limit N] [--json]
      The audit trail of one subject (user:<userid>, party:<id>, reconcile) and its
      verification: each record's HMAC link, seqs, and the newest signed digest's head.
  audit verify (--all | --subject ID) [--json]
      Verify every subject of the newest signed digest plus every subject with records
      since it (or one subject); each break is listed with subject, seq and kind (edited,
      inserted, removed, removed-newest, trail-deleted, unauthenticated, moved,
      digest-invalid). Records expired by retention are not a break.
  audit digest [--json]
      Sign and store a digest of every chain head now (the audit-digest schedule does this
      hourly; locally under .data/audit-digests/).
  dlq list [--json]
  dlq redrive [--id ID]
      Dead letters (parked sync messages, with the reason) and sending them back.
  approvals list [--json]
  approvals approve (--all | ID…)
  approvals reject (--all | ID…)
      Destructive actions held by the deletion guard on the event path (a burst of mailbox
      disables or WeCom offboardings). approve: the person's next run goes through (queued
      now); reject: no destructive action for that person until the situation changes.
      ID is a userid or user:<userid>; each decision is audited with your name.
  status [--json]
      Queue depths, subscription expiry, last reconcile, token health (both WeCom secrets,
      Graph).
  local-token                 a Graph token of the local stack's simulator (for curl)
  demo-offboard USERID        disable USERID's mailbox in the local stack (offboarding demo)

global options
  --stack NAME [--region R]   a deployed stack (CloudFormation outputs; your AWS credentials)
  --data-dir DIR              the local stack's data directory (default .data)
  --json                      machine-readable output on stdout (progress goes to stderr)
  -h, --help

exit codes
  0   success; reconcile: in sync (or everything repaired)
  1   failure (a dependency failed, status unhealthy, a repair failed, nothing to redrive for --id)
  2   reconcile: drift found (or left unrepaired, e.g. refused by the deletion guard);
      audit: the audit trail is broken (tampered records, or a digest that does not verify)
  64  usage error
`;

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
};
const GLOBAL = ['stack', 'region', 'data-dir', 'json', 'help'];

function usageProblem(
  command: string,
  rest: string[],
  v: { region?: string; stack?: string; subject?: string; since?: string; limit?: string; source?: string; template?: string; repair?: boolean; apply?: boolean; confirm?: boolean; all?: boolean },
): string | undefined {
  if (v.region && !v.stack) return '--region needs --stack';
  if (command === 'reconcile' && (v.apply || v.confirm) && !v.repair) return '--apply and --confirm only make sense with --repair';
  if (command === 'dlq' && rest[0] !== 'list' && rest[0] !== 'redrive') return 'dlq needs a subcommand: list | redrive [--id ID]';
  if (command === 'approvals') {
    const [sub, ...ids] = rest;
    if (sub !== 'list' && sub !== 'approve' && sub !== 'reject') return 'approvals needs a subcommand: list | approve (--all | ID…) | reject (--all | ID…)';
    if (sub === 'list' && (ids.length || v.all)) return 'approvals list takes no ID or --all';
    if (sub !== 'list' && Boolean(v.all) === ids.length > 0) return `approvals ${sub} needs --all or one or more IDs (not both)`;
    if (ids.some((id) => !/^(user:)?[A-Za-z0-9_.@-]{1,64}$/.test(id))) return 'an ID is a WeCom userid or user:<userid>';
  }
  if (command === 'audit') {
    const sub = rest[0];
    if (sub === undefined) {
      if (!v.subject) return 'audit needs --subject (e.g. user:zhangsan, party:2, reconcile) or a subcommand: verify | digest';
      if (v.all) return '--all goes with audit verify';
    } else if (sub === 'verify') {
      if (Boolean(v.all) === Boolean(v.subject)) return 'audit verify needs --all or --subject ID (not both)';
      if (v.since || v.limit) return 'audit verify takes no --since or --limit';
    } else if (sub === 'digest') {
      if (v.subject || v.all || v.since || v.limit) return 'audit digest takes no option but --json';
    } else return `unknown audit subcommand '${sub}': verify (--all | --subject ID) | digest`;
  }
  if (command === 'import-csv' && !rest[0]) return 'import-csv needs a FILE';
  if (command === 'demo-offboard' && !rest[0]) return 'demo-offboard needs a WeCom userid';
  if (command === 'export-csv' && v.source && !['wecom', 'mailbox'].includes(v.source)) return '--source is wecom or mailbox';
  if (command === 'import-csv' && v.template && !['wecom', 'm365'].includes(v.template)) return '--template is wecom or m365';
  const extraPositionals =
    command === 'approvals' ? false : command === 'dlq' || command === 'import-csv' || command === 'demo-offboard' || command === 'audit' ? rest.length > 1 : rest.length > 0;
  if (extraPositionals) return `unexpected argument(s): ${rest.join(' ')}`;
  return undefined;
}

export interface MainOptions {
  io?: import('./cli/output').Io;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  const { processIo } = await import('./cli/output');
  const io = opts.io ?? processIo;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`wecom-sync: ${(err as Error).message}\n(wecom-sync --help for usage)`);
    return 64;
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help || !command) {
    (v.help ? io.out : io.err)(HELP.trimEnd());
    return v.help ? 0 : 64;
  }
  if (!(command in ACCEPTS)) {
    io.err(`wecom-sync: unknown command '${command}'\n(wecom-sync --help for usage)`);
    return 64;
  }
  const extra = Object.keys(v).filter((k) => !GLOBAL.includes(k) && !ACCEPTS[command]!.includes(k));
  if (extra.length) {
    io.err(`wecom-sync ${command}: option(s) not accepted here: ${extra.map((k) => `--${k}`).join(', ')}`);
    return 64;
  }

  // Usage problems first: no need to load anything or reach a stack to say an option is wrong.
  const usage = usageProblem(command, rest, v);
  if (usage) {
    io.err(`wecom-sync ${command}: ${usage}\n(wecom-sync --help for usage)`);
    return 64;
  }

  const commands = await import('./cli/commands');
  const { CliError, localTarget, stackTarget } = await import('./cli/target');
  let target: Awaited<ReturnType<typeof localTarget>> | undefined;
  try {
    target = v.stack
      ? await stackTarget({ stack: v.stack, ...(v.region ? { region: v.region } : {}) })
      : await localTarget({ ...(v['data-dir'] ? { dataDir: v['data-dir'] } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.env ? { env: opts.env } : {}) });
    switch (command) {
      case 'reconcile':
        return await commands.reconcileCommand(target, { repair: v.repair, apply: v.apply, confirm: v.confirm, json: v.json }, io);
      case 'audit':
        if (rest[0] === 'verify') return await commands.auditVerifyCommand(target, { subject: v.subject, all: v.all, json: v.json }, io);
        if (rest[0] === 'digest') return await commands.auditDigestCommand(target, { json: v.json }, io);
        return await commands.auditCommand(target, { subject: v.subject, since: v.since, limit: v.limit, json: v.json }, io);
      case 'dlq':
        return await commands.dlqCommand(target, rest[0], { id: v.id, json: v.json }, io);
      case 'approvals':
        return await commands.approvalsCommand(target, rest[0]!, { ids: rest.slice(1), all: v.all, json: v.json }, io);
      case 'status':
        return await commands.statusCommand(target, { json: v.json }, io);
      case 'export-csv':
        return await commands.exportCsvCommand(target, { source: v.source, out: v.out }, io);
      case 'import-csv':
        return await commands.importCsvCommand(target, { file: rest[0], template: v.template, apply: v.apply, json: v.json }, io);
      case 'local-token':
        return await commands.localTokenCommand(target, io);
      case 'demo-offboard':
        return await commands.demoOffboardCommand(target, rest[0], io);
    }
    return 64;
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`wecom-sync: ${err.message}`);
      return err.exitCode;
    }
    const { redactText } = await import('../functions/core/redact');
    io.err(`wecom-sync: ${command} failed: ${redactText(err instanceof Error ? `${err.name}: ${err.message}` : String(err))}`);
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

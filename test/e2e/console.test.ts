/**
 * The operator console in a real browser: Debian's headless Chromium driven by playwright-core
 * (no browser download), against the real local stack in process (simulators, dynalite,
 * queue, worker) through a CliTarget — exactly the ports the CLI uses — served by the
 * console's own loopback server until the stack mounts it.
 *
 * One operator's session, in order: sign in with the one-time link, find a person by mobile,
 * Sync now (dry run, then apply), approve an action the deletion guard held, redrive a dead
 * letter, read a reconcile report and its CSV, read the configuration, switch to Chinese.
 * Every step checks the effect on the stack itself (the simulated mailbox, the audit log, the
 * queue), not only the page. Screenshots of every page are kept when a step fails
 * (CONSOLE_TEST_OUTPUT, default test-output/console; CONSOLE_SCREENSHOTS=1 keeps them always).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reconcileCommand } from '../../bin/cli/commands';
import { localTarget, type CliTarget } from '../../bin/cli/target';
import { createConsole, serveConsole, type ConsoleServer, type OperatorConsole } from '../../bin/console/index';
import { osUser } from '../../bin/console/identity';
import type { LocalStack } from '../../bin/local/stack';
import { startTestStack } from '../support/test-stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The flags this machine needs (see the machine notes): no sandbox as root, no GPU, and no
// background network traffic that a closed network would refuse.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const OUTPUT = resolve(process.env.CONSOLE_TEST_OUTPUT ?? join(import.meta.dirname, '../../test-output/console'));
const ZONE = 'Asia/Shanghai';

let cwd: string;
let stack: LocalStack;
let target: CliTarget;
let app: OperatorConsole;
let server: ConsoleServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const operator = `console:${osUser()}`;
/** Every URL the browser asked for: none may carry personal data. */
const requested: string[] = [];
/** CSP violations and script errors reported by the page. */
const pageProblems: string[] = [];
/** Screenshots of this test's pages, written out if it fails. */
let shots: Array<{ name: string; png: Buffer }> = [];

// Web-first waits without @playwright/test: poll the page until it shows what is expected.
const WAIT = { timeout: 15_000, interval: 100 };
const textOf = async (l: Locator) => (await l.allTextContents()).join(' ');
const seesText = (l: Locator, expected: string | RegExp) => expect.poll(() => textOf(l), WAIT).toMatch(expected);
const heading = (expected: string | RegExp) => expect.poll(() => textOf(page.locator('h1')), WAIT).toMatch(expected instanceof RegExp ? expected : new RegExp(`^${expected}$`));
const counts = (l: Locator, n: number) => expect.poll(() => l.count(), WAIT).toBe(n);

async function shot(name: string): Promise<void> {
  shots.push({ name, png: await page.screenshot({ fullPage: true }) });
}

const accounts = () => [...stack.graphSim!.users.values()];
const account = (userid: string) => accounts().find((u) => u.employeeId === userid);

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install -y chromium (see .ci/run)`).toBe(true);
  cwd = mkdtempSync(join(tmpdir(), 'console-e2e-'));
  mkdirSync(join(cwd, '.data'));
  stack = await startTestStack(join(cwd, '.data'), { auditDigestIntervalMs: 0 });
  const sim = stack.wecomSim!;
  sim.departments.set(2, { id: 2, name: '技术部', parentid: 1 } as never);
  const people = [
    { userid: 'zhangsan', name: '张三', mobile: '+8613800138000', position: 'Engineer' },
    { userid: 'lisi', name: '李四', mobile: '+8613800138111', position: 'Engineer' },
    { userid: 'wangwu', name: '王五', position: 'Analyst' },
    { userid: 'zhaoliu', name: '赵六', position: 'Analyst' },
  ];
  for (const p of people) {
    const res = await fetch(`${stack.baseUrl}/_sim/wecom/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...p, department: [2] }) });
    expect(res.status).toBe(201);
  }
  await stack.settle(60_000);
  expect(accounts().filter((a) => a.accountEnabled)).toHaveLength(4);

  target = await localTarget({ dataDir: join(cwd, '.data') });
  app = createConsole({ target, token: stack.adminToken });
  server = await serveConsole({ console: app });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  context = await browser.newContext({ locale: 'en-US', timezoneId: ZONE, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('request', (r) => requested.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') pageProblems.push(m.text());
  });
  page.on('pageerror', (e) => pageProblems.push(e.message));
  // The console asks before it acts (confirm()); the operator says yes.
  page.on('dialog', (d) => void d.accept());
}, 120_000);

afterEach(async (ctx) => {
  const failed = ctx.task.result?.state === 'fail';
  if (failed && page) await shot('at-failure').catch(() => undefined);
  if ((failed || process.env.CONSOLE_SCREENSHOTS === '1') && shots.length) {
    const dir = join(OUTPUT, ctx.task.name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, ''));
    mkdirSync(dir, { recursive: true });
    shots.forEach((s, i) => writeFileSync(join(dir, `${String(i + 1).padStart(2, '0')}-${s.name}.png`), s.png));
    if (failed) console.error(`console e2e: screenshots in ${dir}`);
  }
  shots = [];
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await target?.close();
  await stack?.close();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

describe('operator console in Chromium against the local stack', () => {
  it('signs in with the one-time link; the link works once; pages carry a strict CSP and no inline script', async () => {
    const link = app.loginUrl(server.origin);
    await page.goto(link);
    expect(page.url()).toBe(`${server.origin}/console/`);
    await heading('Overview');
    await shot('overview');
    const raw = await page.request.get(`${server.origin}/console/`); // the server's own bytes, before any script ran
    const csp = raw.headers()['content-security-policy'];
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'(;|$)/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const markup = await raw.text();
    expect(markup).toMatch(/<script src="\/console\/static\/app\.js" nonce="[^"]+" defer><\/script>/);
    expect(markup).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // every script is a file
    expect(markup).not.toMatch(/\sstyle="/); // and no inline style either
    // Overview: health checks, the charts, the operator recorded in the audit.
    await seesText(page.locator('section.panel h2').first(), 'Health');
    expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(2);
    await seesText(page.locator('.who'), operator);

    // Spent: the same link again is refused, in a fresh browser without the session.
    const other = await browser.newContext({ locale: 'en-US' });
    const again = await (await other.newPage()).goto(link);
    expect(again!.status()).toBe(401);
    await other.close();
  }, 120_000);

  it('finds a person by full or masked mobile (sent by POST), and shows both sides masked with the verified audit trail', async () => {
    await page.getByRole('link', { name: 'People' }).click();
    await page.getByLabel('Find a person').fill('138 0013 8000');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.locator('table.data tbody tr');
    await counts(row, 1);
    await seesText(row, 'zhangsan');
    await seesText(row, '+86138****8000');
    await shot('people-search');

    await page.getByLabel('Find a person').fill('138****8111');
    await page.getByRole('button', { name: 'Search' }).click();
    await seesText(page.locator('table.data tbody tr'), 'lisi');

    await page.getByLabel('Find a person').fill('zhang');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: 'zhangsan' }).click();
    await heading('Person zhangsan');
    const mobileRow = page.locator('tr', { has: page.locator('th', { hasText: /^Mobile$/ }) });
    await seesText(mobileRow, '+86138****8000');
    expect(await page.content()).not.toContain('13800138000');
    await page.getByText('chain verified').first().waitFor(WAIT);
    await shot('person');
  }, 120_000);

  it('Sync now: a dry run shows exactly what would change and why; Apply writes it, audited with the operator', async () => {
    // A WeCom edit whose callback never arrived: only a sync of this person would find it.
    const sim = stack.wecomSim!;
    sim.users.set('zhangsan', { ...sim.users.get('zhangsan')!, position: 'Architect' });
    const before = (await (await target.audit()).bySubject('user:zhangsan')).length;

    await page.getByRole('button', { name: 'Sync now…' }).click();
    await heading('Sync now: zhangsan');
    await page.getByText('decision table row 19').first().waitFor(WAIT);
    const step = page.locator('table.data tbody tr', { hasText: 'update' });
    await seesText(step, 'Engineer');
    await seesText(step, 'Architect');
    await seesText(step, 'dry run');
    await shot('sync-preview');
    expect(account('zhangsan')!.jobTitle).toBe('Engineer'); // nothing written by the preview
    const previewed = (await (await target.audit()).bySubject('user:zhangsan')).slice(before);
    expect(previewed.map((r) => [r.action, r.outcome, r.operator])).toEqual([['update', 'dry-run', operator]]);

    await page.getByRole('button', { name: 'Apply' }).click();
    await seesText(page.locator('.flash'), 'Applied.');
    await page.getByText('applied as previewed').first().waitFor(WAIT);
    await shot('sync-applied');
    expect(account('zhangsan')!.jobTitle).toBe('Architect');
    const applied = (await (await target.audit()).bySubject('user:zhangsan')).slice(before + 1);
    expect(applied.map((r) => [r.action, r.outcome, r.operator])).toEqual([['update', 'ok', operator]]);
  }, 120_000);

  it('a changed person between preview and Apply: nothing is applied, a new preview is shown', async () => {
    await page.getByRole('link', { name: /back to zhangsan/ }).click();
    await page.getByRole('button', { name: 'Sync now…' }).click();
    await page.getByText('Nothing to change.').first().waitFor(WAIT);
    await counts(page.getByRole('button', { name: 'Apply' }), 0);

    await stack.settle(); // the mailbox's own notification of the last write has been handled
    const sim = stack.wecomSim!;
    sim.users.set('zhangsan', { ...sim.users.get('zhangsan')!, position: 'Lead' });
    await page.goBack();
    await page.getByRole('button', { name: 'Sync now…' }).click();
    await seesText(page.locator('table.data tbody tr', { hasText: 'update' }), 'Lead');
    sim.users.set('zhangsan', { ...sim.users.get('zhangsan')!, position: 'Director' }); // changed after the preview
    await page.getByRole('button', { name: 'Apply' }).click();
    await seesText(page.locator('.flash'), 'nothing was applied');
    await seesText(page.locator('table.data tbody tr', { hasText: 'update' }), 'Director');
    expect(account('zhangsan')!.jobTitle).toBe('Architect');
    await shot('sync-changed');
  }, 120_000);

  it('Apply while another run holds the person: nothing is applied, the operator is told to press Apply again, which then works', async () => {
    // The queue's worker (another event) is mid-run on zhangsan: its write-ahead intent is young.
    const { state, now } = await target.engineDeps();
    const stored = (await state.get('user:zhangsan'))!;
    const busy = await state.put({ ...stored, intent: { eventId: 'evt-worker-run', operator: 'wecom-callback', at: now().toISOString(), steps: [] } });
    const trail = (await (await target.audit()).bySubject('user:zhangsan')).length;
    await page.getByRole('button', { name: 'Apply' }).click();
    await seesText(page.locator('.flash'), /Another run .* is syncing zhangsan right now: nothing was applied\. Press Apply again in about \d+ s\./);
    await shot('sync-busy');
    expect(account('zhangsan')!.jobTitle).toBe('Architect');
    expect((await (await target.audit()).bySubject('user:zhangsan')).slice(trail).filter((r) => r.outcome !== 'dry-run')).toEqual([]);

    // That run ends (its last state write clears the intent): the same plan applies.
    const { intent: _done, ...ended } = busy;
    await state.put(ended);
    await page.getByRole('button', { name: 'Apply' }).click();
    await seesText(page.locator('.flash'), 'Applied.');
    expect(account('zhangsan')!.jobTitle).toBe('Director');
  }, 120_000);

  it('approves an action the deletion guard held; the decision is audited with the operator', async () => {
    // Two members deleted in WeCom at once: the guard (limit 1 of 4 managed) lets one through and holds the other.
    for (const userid of ['wangwu', 'zhaoliu']) expect((await fetch(`${stack.baseUrl}/_sim/wecom/users/${userid}`, { method: 'DELETE' })).status).toBe(200);
    await stack.settle(60_000);
    const stillEnabled = ['wangwu', 'zhaoliu'].filter((u) => account(u)!.accountEnabled);
    expect(stillEnabled).toHaveLength(1);
    const heldUser = stillEnabled[0]!;

    await page.getByRole('link', { name: 'Approvals' }).click();
    const row = page.locator('table.data tbody tr', { hasText: heldUser });
    await seesText(row, 'waiting for a decision');
    await seesText(row, 'deletion guard');
    await shot('approvals');
    await row.getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Approve selected' }).click();
    await seesText(page.locator('.flash'), '1 approved; their runs are queued.');
    await stack.settle(60_000);
    expect(account(heldUser)!.accountEnabled).toBe(false);
    const trail = await (await target.audit()).bySubject(`user:${heldUser}`);
    expect(trail.find((r) => r.action === 'approve')?.operator).toBe(operator);
    await page.reload();
    await page.getByText('Nothing is held.').first().waitFor(WAIT);
    await shot('approvals-done');
  }, 120_000);

  it('redrives a dead letter: reason shown, message back on the queue', async () => {
    await stack.queue.park(
      { v: 1, subject: 'user:lisi', source: 'wecom', eventId: 'evt-console-dead', operator: 'wecom-callback', receivedAt: new Date().toISOString() },
      'WeCom user/get failed: errcode 60020',
    );
    await page.getByRole('link', { name: 'Dead letters' }).click();
    const row = page.locator('table.data tbody tr', { hasText: 'errcode 60020' });
    await seesText(row, 'lisi');
    await seesText(row, 'wecom');
    await shot('dead-letters');
    await row.getByRole('button', { name: 'Redrive' }).click();
    await seesText(page.locator('.flash'), '1 message(s) sent back to the work queue.');
    await stack.settle();
    expect(stack.queue.deadLetters).toHaveLength(0);
    await page.getByText('No dead letters.').first().waitFor(WAIT);
  }, 120_000);

  it('shows a reconcile report as a table and downloads its CSV', async () => {
    // Drift for the report: a mailbox account nobody linked (informational) and a field edited in the mailbox.
    const lisi = account('lisi')!;
    lisi.jobTitle = 'Temp';
    const io = { out: () => undefined, err: () => undefined, tty: false };
    expect(await reconcileCommand(target, {}, io)).toBe(2);

    await page.getByRole('link', { name: 'Reports' }).click();
    await page.locator('table.data tbody tr a').first().click();
    await seesText(page.locator('h1'), 'Reconcile of');
    const finding = page.locator('table.data tbody tr', { hasText: 'user:lisi' });
    await seesText(finding, 'Fields differ');
    await seesText(finding, 'Position');
    await shot('report');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).first().click()]);
    const csv = await readStream(await download.createReadStream());
    expect(csv.split('\n')[0]).toBe('\ufeffclass,subject,userid,accountId,departmentId,fields,detail,repair,actions');
    expect(csv).toMatch(/fields-differ,user:lisi,lisi/);
  }, 120_000);

  it('shows the effective configuration with what each setting means', async () => {
    await page.getByRole('link', { name: 'Configuration' }).click();
    const row = page.locator('tr', { hasText: 'deletionGuard.maxPeople' });
    await seesText(row, '20');
    await seesText(row, 'At most this many people');
    await shot('config');
  }, 120_000);

  it('switches to Chinese: pages, the CSV headers and dates in the viewer’s time zone follow', async () => {
    await page.getByLabel('Language').selectOption('zh-CN');
    await expect.poll(() => page.locator('html').getAttribute('lang'), WAIT).toBe('zh-CN');
    await heading('配置');
    await page.getByRole('link', { name: '报告' }).click();
    const time = page.locator('table.data time').first();
    const iso = (await time.getAttribute('datetime'))!;
    const shanghai = new Date(Date.parse(iso) + 8 * 3_600_000).toISOString().slice(11, 16); // UTC+8, no DST
    await seesText(time, shanghai);
    await shot('reports-zh');
    await page.locator('table.data tbody tr a').first().click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).first().click()]);
    const csv = await readStream(await download.createReadStream());
    expect(csv.split('\n')[0]).toBe('\ufeff类别,对象,UserID,邮箱账号ID,部门ID,字段,详情,修复结果,执行的操作');
    await page.getByRole('link', { name: '总览' }).click();
    await heading('总览');
    await shot('overview-zh');

    // A browser that prefers Chinese gets Chinese before signing in (Accept-Language).
    const zh = await browser.newContext({ locale: 'zh-CN', timezoneId: ZONE });
    const p = await zh.newPage();
    await p.goto(`${server.origin}/console/`);
    await seesText(p.locator('h1'), '登录');
    await zh.close();
  }, 120_000);

  it('left no personal data in any URL, and the page reported no CSP violation or script error', () => {
    expect(requested.length).toBeGreaterThan(10);
    for (const url of requested) expect(url).not.toMatch(/zhangsan|lisi|wangwu|zhaoliu|13800138|%2B86|\+86|%E5|张三/);
    expect(pageProblems).toEqual([]);
  });
});

describe('console doors (over HTTP)', () => {
  it('refuses a foreign Host (DNS rebinding), a cross-site POST, and a POST without the CSRF token', async () => {
    const cookie = await signedInCookie();
    // fetch() will not send another Host: a raw request, as a DNS-rebinding page's would arrive.
    expect(await statusWithHost('/console/', 'evil.example', cookie)).toBe(403);
    expect(await statusWithHost('/console/', `localhost:${server.port}`, cookie)).toBe(200);
    const crossSite = await fetch(`${server.origin}/console/dead-letters/redrive`, {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'all=yes',
    });
    expect(crossSite.status).toBe(403);
    const noToken = await fetch(`${server.origin}/console/dead-letters/redrive`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: 'all=yes' });
    expect(noToken.status).toBe(403);
    const anonymous = await fetch(`${server.origin}/console/approvals`, { redirect: 'manual' });
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toBe('/console/login');
  });

  it('the long-lived token (the local admin token) signs in through the form; a wrong one does not', async () => {
    const bad = await fetch(`${server.origin}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=nope' });
    expect(bad.status).toBe(401);
    const good = await fetch(`${server.origin}/console/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: stack.adminToken }),
    });
    expect(good.status).toBe(303);
    expect(good.headers.get('set-cookie')).toMatch(/^wsc_session=[^;]+; Path=\/console; SameSite=Strict; HttpOnly/);
  });
});

async function signedInCookie(): Promise<string> {
  const res = await fetch(app.loginUrl(server.origin), { redirect: 'manual' });
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

function statusWithHost(path: string, host: string, cookie: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers: { host, cookie } }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('error', fail);
    req.end();
  });
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

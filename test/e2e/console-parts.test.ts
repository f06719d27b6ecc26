/**
 * The console's small parts, on their own (the browser test covers them together): escaping,
 * sealed person references, sign-in tokens and sessions, the configuration's redaction, what
 * a search query is, and the Overview's counting. Pure and fast; kept beside the console's
 * browser test because they guard the same doors.
 */
import { describe, expect, it } from 'vitest';
import { html, raw } from '../../bin/console/html';
import { SubjectRefs } from '../../bin/console/refs';
import { Sessions } from '../../bin/console/session';
import { configRows } from '../../bin/console/data/config';
import { queryKind } from '../../bin/console/data/people';
import { loadActivity } from '../../bin/console/data/activity';
import { contentSecurityPolicy } from '../../bin/console/http';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import type { AuditRecord } from '../../functions/store/ports';

describe('html', () => {
  it('escapes every interpolated value; only our own markup passes', () => {
    const name = `<script>alert("x")</script>&'`;
    expect(html`<td title="${name}">${name}</td>`.value).toBe('<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</td>');
    expect(html`<p>${[html`<b>${'<i>'}</b>`, undefined, null, false, 0]}</p>`.value).toBe('<p><b>&lt;i&gt;</b>0</p>');
    expect(html`${raw('<svg/>')}`.value).toBe('<svg/>');
  });
});

describe('person references', () => {
  it('seal a subject into a URL-safe ref that only this console opens; one person, one ref', () => {
    const refs = new SubjectRefs();
    const ref = refs.seal('user:zhangsan');
    expect(ref).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(ref).not.toContain('zhangsan');
    expect(refs.seal('user:zhangsan')).toBe(ref);
    expect(refs.open(ref)).toBe('user:zhangsan');
    expect(new SubjectRefs().open(ref)).toBeUndefined(); // another console's key
    const flipped = ref.slice(0, 20) + (ref[20] === 'A' ? 'B' : 'A') + ref.slice(21);
    expect(refs.open(flipped)).toBeUndefined(); // GCM: a changed byte does not open
    expect(refs.open('not-a-ref')).toBeUndefined();
  });
});

describe('sign-in and sessions', () => {
  it('a one-time token signs in once, within its lifetime; the long-lived token always; sessions expire when idle', () => {
    let now = 0;
    const sessions = new Sessions({ token: 'admin-token', now: () => now, loginTokenMs: 60_000, idleMs: 3_600_000 });
    const once = sessions.mintLoginToken();
    const s = sessions.signIn(once)!;
    expect(s).toBeDefined();
    expect(sessions.signIn(once)).toBeUndefined(); // spent
    const late = sessions.mintLoginToken();
    now += 61_000;
    expect(sessions.signIn(late)).toBeUndefined(); // expired
    expect(sessions.signIn('admin-token')).toBeDefined();
    expect(sessions.signIn('admin-toke')).toBeUndefined();
    expect(sessions.signIn('')).toBeUndefined();

    expect(sessions.get(s.id)).toBe(s);
    expect(sessions.checkCsrf(s, s.csrf)).toBe(true);
    expect(sessions.checkCsrf(s, 'forged')).toBe(false);
    expect(sessions.checkCsrf(s, null)).toBe(false);
    now += 3_600_001;
    expect(sessions.get(s.id)).toBeUndefined();
  });

  it('without a long-lived token only minted links sign in', () => {
    const sessions = new Sessions();
    expect(sessions.signIn('anything')).toBeUndefined();
  });
});

describe('content security policy', () => {
  it('allows our script by nonce only, our stylesheet, and nothing inline', () => {
    const csp = contentSecurityPolicy('abc');
    expect(csp).toBe("default-src 'none'; script-src 'nonce-abc'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  });
});

describe('configuration rows', () => {
  it('show values against defaults, never a secret-looking key, and URLs without credentials or query', () => {
    const config = parseRuntimeConfig({
      provider: 'graph',
      mailDomain: 'example.com',
      deletionGuard: { maxPeople: 5 },
      graph: { apiBase: 'https://user:pw@graph.example/v1.0?key=sekret', notificationUrl: 'https://hooks.example/graph' },
    });
    const rows = configRows(config);
    const row = (path: string) => rows.find((r) => r.path === path)!;
    expect(row('deletionGuard.maxPeople')).toMatchObject({ value: '5', default: '20', changed: true, known: true });
    expect(row('deletionGuard.windowMinutes')).toMatchObject({ value: '10', changed: false });
    expect(row('graph.apiBase')).toMatchObject({ value: 'https://graph.example/v1.0?…', redacted: true });
    expect(row('graph.notificationUrl')).toMatchObject({ value: 'https://hooks.example/graph', redacted: false });
    expect(JSON.stringify(rows)).not.toMatch(/sekret|user:pw/);
    expect(rows.every((r) => r.known)).toBe(true);
    // Only the configured provider's block: a Graph deployment shows no LDAP or Google settings.
    expect(rows.filter((r) => /^(google|exmail|ldap)\./.test(r.path))).toEqual([]);
    const ldapRows = configRows(parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap: { urls: ['ldaps://dc1.example.com'], baseDn: 'dc=example,dc=com' } }));
    expect(ldapRows.find((r) => r.path === 'ldap.baseDn')).toMatchObject({ value: 'dc=example,dc=com', changed: true });
    expect(ldapRows.filter((r) => /^graph\./.test(r.path))).toEqual([]);
  });
});

describe('search queries', () => {
  it('tell a full mobile, a masked one and text apart', () => {
    expect(queryKind('13800138000')).toBe('mobile');
    expect(queryKind('+86 138 0013 8000')).toBe('mobile');
    expect(queryKind('138****8000')).toBe('masked-mobile');
    expect(queryKind('+86138****8000')).toBe('masked-mobile');
    expect(queryKind('zhangsan')).toBe('text');
    expect(queryKind('张三')).toBe('text');
    expect(queryKind('12345')).toBe('text');
  });
});

describe('overview activity', () => {
  const rec = (at: string, action: AuditRecord['action'], eventId: string, outcome: AuditRecord['outcome'] = 'ok', subject = 'user:a'): AuditRecord =>
    ({ subject, operator: 'sync-worker', action, outcome, at, eventId, seq: 1, hash: '', prevHash: '' }) as AuditRecord;

  it('counts distinct events per hour and actions per day; dry runs and reconcile summaries are not activity', async () => {
    const now = new Date('2026-12-03T10:30:00.000Z');
    const records = [
      rec('2026-12-03T10:05:00.000Z', 'create', 'e1'),
      rec('2026-12-03T10:06:00.000Z', 'enable', 'e1'), // same event: one event, two actions
      rec('2026-12-03T09:10:00.000Z', 'disable', 'e2'),
      rec('2026-12-03T09:20:00.000Z', 'update', 'e3', 'dry-run'),
      rec('2026-12-03T09:30:00.000Z', 'skip', 'r1', 'ok', 'reconcile'),
      rec('2026-12-01T12:00:00.000Z', 'held', 'e4'),
    ];
    const audit = { byTime: async (from: Date, to: Date) => records.filter((r) => Date.parse(r.at) >= from.getTime() && Date.parse(r.at) <= to.getTime()) };
    const a = await loadActivity(audit, now);
    expect(a.hours).toHaveLength(25);
    expect(a.hours.at(-1)).toEqual({ start: '2026-12-03T10:00:00.000Z', events: 1 });
    expect(a.hours.at(-2)).toEqual({ start: '2026-12-03T09:00:00.000Z', events: 1 });
    expect(a.days.at(-1)).toEqual({ day: '2026-12-03', counts: { onboard: 2, update: 0, offboard: 1, guard: 0, problem: 0, other: 0 } });
    expect(a.days.find((d) => d.day === '2026-12-01')!.counts.guard).toBe(1);
    expect(a.partial).toBe(false);
  });

  it('stops at the record cap, newest days first, and says the charts are partial', async () => {
    const now = new Date('2026-12-03T10:30:00.000Z');
    const asked: string[] = [];
    const audit = {
      byTime: async (from: Date) => {
        asked.push(from.toISOString().slice(0, 10));
        return [rec(from.toISOString(), 'update', `e-${from.getTime()}`)];
      },
    };
    const a = await loadActivity(audit, now, 2);
    expect(asked).toEqual(['2026-12-03', '2026-12-02']);
    expect(a.partial).toBe(true);
  });
});

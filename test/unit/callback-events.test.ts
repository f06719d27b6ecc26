import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';
import type { Inbox, InboxEntry } from '../../functions/store/ports';
import { createCallbackReceiver } from '../../functions/wecom/callback';
import { CallbackRejected } from '../../functions/wecom/crypto';
import { parseEnvelope, parseEvent, parseFlat, parseXmlFull, parseXmlRoot, subjectsOf } from '../../functions/wecom/events';
import { buildPost, buildVerify, contactEvent, eventXml } from '../support/wecom-callback-client';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/wecom-callback-vectors.json', import.meta.url), 'utf8'));
const keys = { token: vectors.token, encodingAESKey: vectors.encodingAESKey, corpId: vectors.corpId };
const CORP = keys.corpId;

const malformed = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CallbackRejected);
    expect((e as CallbackRejected).reason).toBe('malformed');
    return;
  }
  throw new Error('expected malformed');
};

describe('parseEnvelope', () => {
  it('extracts Encrypt from the envelope (CDATA or not)', () => {
    expect(parseEnvelope('<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>')).toEqual({
      encrypt: 'abc+/=',
    });
    expect(parseEnvelope('<?xml version="1.0"?><xml><Encrypt>abc</Encrypt></xml>')).toEqual({ encrypt: 'abc' });
  });
  it('refuses DOCTYPE / ENTITY declarations outright (XXE, entity bombs)', () => {
    malformed(() => parseEnvelope('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>'));
    malformed(() =>
      parseEnvelope('<?xml version="1.0"?><!doctype lolz [<!entity lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><xml><Encrypt>&lol2;</Encrypt></xml>'),
    );
    malformed(() => parseEnvelope('<xml><Encrypt>a</Encrypt><!ENTITY y "z"></xml>'));
  });
  it('does not expand entity references', () => {
    // A predefined entity is left as text: nothing is expanded, and such a value then fails base64 at decrypt.
    expect(parseEnvelope('<xml><Encrypt>a&amp;b</Encrypt></xml>').encrypt).toBe('a&amp;b');
  });
  it('refuses malformed XML, a missing or empty or repeated Encrypt, other roots', () => {
    malformed(() => parseEnvelope(''));
    malformed(() => parseEnvelope('not xml'));
    malformed(() => parseEnvelope('<xml><Encrypt>abc</Encrypt>'));
    malformed(() => parseEnvelope('<xml><Encrypt>abc</Encrpyt></xml>'));
    malformed(() => parseEnvelope('<xml><ToUserName>a</ToUserName></xml>'));
    malformed(() => parseEnvelope('<xml><Encrypt></Encrypt></xml>'));
    malformed(() => parseEnvelope('<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>'));
    malformed(() => parseEnvelope('<root><Encrypt>abc</Encrypt></root>'));
    malformed(() => parseEnvelope('<xml><Encrypt><a><b><c><d><e><f><g><h><i>x</i></h></g></f></e></d></c></b></a></Encrypt></xml>'));
  });
});

describe('parseEvent and subjectsOf', () => {
  it('user events name the user; a userid change names both old and new', () => {
    const create = parseEvent(contactEvent(CORP, 'create_user', { UserID: 'zhangsan', Department: '1,2', Mobile: '13800000000' }));
    expect(create).toEqual({ kind: 'change_contact/create_user', change: { type: 'user', changeType: 'create_user', userId: 'zhangsan' } });
    expect(subjectsOf(create)).toEqual(['user:zhangsan']);
    const rename = parseEvent(contactEvent(CORP, 'update_user', { UserID: 'zhangsan', NewUserID: 'zhang.san' }));
    expect(subjectsOf(rename)).toEqual(['user:zhangsan', 'user:zhang.san']);
    const same = parseEvent(contactEvent(CORP, 'update_user', { UserID: 'zhangsan', NewUserID: 'zhangsan' }));
    expect(subjectsOf(same)).toEqual(['user:zhangsan']);
    expect(subjectsOf(parseEvent(contactEvent(CORP, 'delete_user', { UserID: 'li-si@x' })))).toEqual(['user:li-si@x']);
  });
  it('party events name the department', () => {
    for (const t of ['create_party', 'update_party', 'delete_party']) {
      const e = parseEvent(contactEvent(CORP, t, { Id: '42', ParentId: '1' }));
      expect(e.kind).toBe(`change_contact/${t}`);
      expect(subjectsOf(e)).toEqual(['party:42']);
    }
  });
  it('tag events name every added or removed user and department, once each', () => {
    const e = parseEvent(
      contactEvent(CORP, 'update_tag', { TagId: '7', AddUserItems: 'a,b', DelUserItems: 'c,a', AddPartyItems: '3', DelPartyItems: '' }),
    );
    expect(subjectsOf(e)).toEqual(['user:a', 'user:b', 'user:c', 'party:3']);
    expect(subjectsOf(parseEvent(contactEvent(CORP, 'update_tag', { TagId: '7' })))).toEqual([]);
  });
  it('valid events we do not act on come back without a change', () => {
    expect(parseEvent(vectors.post.plaintext)).toEqual({ kind: 'text' });
    const job = parseEvent(eventXml(CORP, { Event: 'batch_job_result' }).replace('</xml>', '<BatchJob><JobId>x</JobId></BatchJob></xml>'));
    expect(job).toEqual({ kind: 'event/batch_job_result' });
    expect(subjectsOf(job)).toEqual([]);
    expect(parseEvent(contactEvent(CORP, 'some_future_change', {}))).toEqual({ kind: 'change_contact/some_future_change' });
  });
  it('refuses handled events missing or with invalid ids, and junk', () => {
    malformed(() => parseEvent(contactEvent(CORP, 'create_user', {})));
    malformed(() => parseEvent(contactEvent(CORP, 'create_user', { UserID: '' })));
    malformed(() => parseEvent(contactEvent(CORP, 'create_user', { UserID: 'has space' })));
    malformed(() => parseEvent(contactEvent(CORP, 'create_user', { UserID: 'x'.repeat(65) })));
    malformed(() => parseEvent(contactEvent(CORP, 'update_user', { UserID: 'a', NewUserID: 'b/c' })));
    malformed(() => parseEvent(contactEvent(CORP, 'delete_party', { Id: 'abc' })));
    malformed(() => parseEvent(contactEvent(CORP, 'update_tag', { TagId: '1', AddUserItems: 'ok,not ok' })));
    malformed(() => parseEvent(contactEvent(CORP, 'update_tag', { AddUserItems: 'a' })));
    malformed(() => parseEvent(eventXml(CORP, { ChangeType: 'create_user', UserID: 'a' })));
    malformed(() => parseEvent('<xml><ToUserName>x</ToUserName></xml>'));
    malformed(() => parseEvent('<xml><MsgType>Event!</MsgType></xml>'));
    malformed(() => parseEvent(contactEvent(CORP, 'create_user', { UserID: 'a' }).replace('<xml>', '<!DOCTYPE x><xml>')));
  });
});

// ---------------------------------------------------------------- the flat fast path against fast-xml-parser

/** The parse as it was before the fast path: declaration check, then fast-xml-parser alone. */
function fullParse(xml: string): Record<string, unknown> {
  if (/<!\s*(doctype|entity|element|attlist)/i.test(xml)) throw new CallbackRejected('malformed');
  return parseXmlFull(xml);
}
const outcome = (f: () => unknown) => {
  try {
    return { ok: f() };
  } catch (e) {
    return { err: e instanceof CallbackRejected ? e.reason : String(e) };
  }
};

/** Small seeded PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Documents near WeCom's shape: half of them in the shape itself (with awkward text: spaces of
 * every kind, `>`, `]]>`, CJK, NUL), half with the deviations the fast path must leave to the
 * full parser; 15 % then get a random one-character edit.
 */
function randomDocument(r: () => number): string {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const wild = r() < 0.5;
  const tame = ['a', 'Z', '0', ' ', ' ', '\t', '\n', '>', ']', ']]>', '\u3000', '\u00a0', '\ufeff', '中', '"', "'", '/', '=', '\0'];
  const chars = wild ? [...tame, '\r', '<', '&', '&amp;', '<!--c-->', '<![CDATA[', '<!DOCTYPE', '<B>'] : tame;
  const text = () => Array.from({ length: Math.floor(r() * 8) }, () => pick(chars)).join('');
  const tameNames = ['Encrypt', 'ToUserName', 'UserID', 'A', 'a_b', 'MsgType', 'x9'];
  const wildNames = [...tameNames, 'a-b', 'a.b', '_x', '1A', 'x:y', 'toString', 'TOSTRING', 'constructor', 'Constructor', 'isPrototypeOf', '__proto__', 'hasOwnProperty', 'valueOf', 'prototype', 'A '];
  const unused = [...tameNames];
  const child = (): string => {
    const n = wild ? pick(wildNames) : unused.splice(Math.floor(r() * unused.length), 1)[0] ?? 'Z';
    const close = !wild || r() < 0.9 ? `</${n}>` : pick([`</${n} >`, `</${n}x>`, '', `</${n.toLowerCase()}>`]);
    const kinds = wild ? (['text', 'cdata', 'empty', 'self', 'nested', 'mixed', 'attr', 'comment'] as const) : (['text', 'cdata', 'empty'] as const);
    switch (pick<string>(kinds)) {
      case 'text':
        return `<${n}>${text()}${close}`;
      case 'cdata':
        return `<${n}><![CDATA[${text()}]]>${close}`;
      case 'empty':
        return `<${n}>${close}`;
      case 'self':
        return `<${n}/>`;
      case 'nested':
        return `<${n}><B>${text()}</B>${close}`;
      case 'mixed':
        return `<${n}>${text()}<![CDATA[${text()}]]>${text()}${close}`;
      case 'attr':
        return `<${n} k="v">${text()}${close}`;
      default:
        return `<!--${text()}--><${n}>${text()}${close}`;
    }
  };
  const sep = () => (r() < 0.6 ? '' : pick(wild ? ['\n', ' ', '\t', '\r\n', 'x', '\u3000'] : ['\n', ' ', '\t', '\n  ']));
  const count = Math.floor(r() * 6) + (wild ? 0 : 1);
  const body = Array.from({ length: count }, () => sep() + child()).join('') + sep();
  const open = !wild || r() < 0.7 ? '<xml>' : pick([' <xml>', '<xml >', '\ufeff<xml>', '<?xml version="1.0"?><xml>', '<XML>', '<xml a="1">']);
  const end = !wild || r() < 0.7 ? pick(['</xml>', '</xml>\n']) : pick(['', '</xml> x', '</xml><xml></xml>', '</XML>']);
  let doc = open + body + end;
  if (r() < 0.15) {
    const at = Math.floor(r() * (doc.length + 1));
    doc = doc.slice(0, at) + (r() < 0.5 ? pick([...chars, '<', '&', '\r']) : '') + doc.slice(at + 1);
  }
  return doc;
}

describe('parseXmlRoot: the flat fast path gives exactly what fast-xml-parser gives', () => {
  it('takes WeCom shapes and returns the same object', () => {
    const docs = [
      '<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>',
      contactEvent(CORP, 'update_user', { UserID: 'zhangsan', Name: '  张三  ', Department: '1,2' }),
      '<xml>\n  <A>  spaced text  </A>\n\t<B><![CDATA[  kept as is  ]]></B>\n  <C></C>\n</xml>\n',
      '<xml><A>a>b]]>c</A><B><![CDATA[<not a tag> & not an entity]]></B></xml>',
      vectors.post.plaintext,
    ];
    for (const d of docs) {
      const fast = parseFlat(d);
      expect(fast, d).toBeDefined();
      expect(fast).toEqual(parseXmlFull(d));
    }
  });

  it('leaves every other shape to fast-xml-parser', () => {
    for (const d of [
      '<xml><A k="v">1</A></xml>', // attribute
      '<xml><A><B>1</B></A></xml>', // nesting
      '<xml><A>a&amp;b</A></xml>', // entity
      '<xml><!--c--><A>1</A></xml>', // comment
      '<?xml version="1.0"?><xml><A>1</A></xml>', // declaration
      '<xml><A>a\r\nb</A></xml>', // CR: the full parser normalises line ends
      '<xml><A>1</A><A>2</A></xml>', // repeated name: an array there
      '<xml><toString>1</toString></xml>', // renamed there
      '<xml><Constructor>1</Constructor></xml>', // refused there
      '<xml><A/></xml>', // self-closing
      '<xml><A>x<![CDATA[y]]></A></xml>', // mixed content
      '<xml></xml>', // no child
      '<xml><A>1</A></xml>junk',
      '\ufeff<xml><A>1</A></xml>',
    ]) {
      expect(parseFlat(d), d).toBeUndefined();
    }
  });

  it('agrees with fast-xml-parser on 20,000 random near-WeCom documents (same object or same rejection)', () => {
    const r = rng(20260516);
    let fastTaken = 0;
    let rejected = 0;
    for (let n = 0; n < 20_000; n++) {
      const d = randomDocument(r);
      const fast = parseFlat(d);
      if (fast) {
        fastTaken++;
        // Whatever the fast path takes, fast-xml-parser accepts with the same result …
        expect(outcome(() => parseXmlFull(d)), JSON.stringify(d)).toEqual({ ok: fast });
      }
      const full = outcome(() => fullParse(d));
      // … and the product's parse (fast path or not) answers exactly as before.
      const now = outcome(() => parseXmlRoot(d));
      expect(now, JSON.stringify(d)).toEqual(full);
      if ('err' in full) rejected++;
    }
    // The corpus exercises both paths and both answers.
    expect(fastTaken).toBeGreaterThan(2_000);
    expect(rejected).toBeGreaterThan(2_000);
    expect(20_000 - fastTaken - rejected).toBeGreaterThan(2_000);
  });
});

// ---------------------------------------------------------------- the receiver with in-memory ports

class MemInbox implements Inbox {
  items = new Map<string, InboxEntry & { status: 'pending' | 'enqueued' }>();
  async record(e: InboxEntry) {
    const cur = this.items.get(e.id);
    if (!cur) {
      this.items.set(e.id, { ...e, status: 'pending' });
      return 'new' as const;
    }
    return cur.status === 'enqueued' ? ('duplicate' as const) : ('pending' as const);
  }
  async markEnqueued(id: string) {
    this.items.get(id)!.status = 'enqueued';
  }
  async listPending(before: Date) {
    return [...this.items.values()].filter((i) => i.status === 'pending' && i.receivedAt < before.toISOString());
  }
}
class MemQueue implements WorkQueue {
  sent: SyncMessage[] = [];
  fail = false;
  async enqueue(m: SyncMessage[]) {
    if (this.fail) throw new Error('queue down');
    this.sent.push(...m);
  }
}

function setup(now = new Date()) {
  const inbox = new MemInbox();
  const queue = new MemQueue();
  const receive = createCallbackReceiver({ keys, inbox, queue, now: () => now });
  const post = (q: Record<string, string>, body: string) => receive({ method: 'POST', path: '/', query: q, headers: {}, body });
  return { inbox, queue, receive, post };
}

describe('createCallbackReceiver', () => {
  it('GET answers the published echostr plaintext, bare, as text/plain', async () => {
    const v = vectors.verifyUrl;
    const { receive } = setup(new Date(Number(v.timestamp) * 1000));
    const res = await receive({ method: 'GET', path: '/', headers: {}, body: '', query: { msg_signature: v.msg_signature, timestamp: v.timestamp, nonce: v.nonce, echostr: v.echostr } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(v.plaintext);
    expect(res.headers?.['content-type']).toMatch(/^text\/plain/);
  });
  it('GET tolerates a "+" in echostr that URL decoding turned into a space', async () => {
    const v = vectors.verifyUrl;
    expect(v.echostr).toContain('+');
    const { receive } = setup(new Date(Number(v.timestamp) * 1000));
    const res = await receive({ method: 'GET', path: '/', headers: {}, body: '', query: { msg_signature: v.msg_signature, timestamp: v.timestamp, nonce: v.nonce, echostr: v.echostr.replace(/\+/g, ' ') } });
    expect(res.body).toBe(v.plaintext);
  });
  it('GET refuses a bad signature and a stale timestamp', async () => {
    const { receive } = setup();
    const q = buildVerify('123', keys);
    expect((await receive({ method: 'GET', path: '/', headers: {}, body: '', query: q })).body).toBe('123');
    const forged = { ...q, msg_signature: '0'.repeat(40) };
    expect((await receive({ method: 'GET', path: '/', headers: {}, body: '', query: forged })).statusCode).toBe(403);
    const old = buildVerify('123', keys, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect(await receive({ method: 'GET', path: '/', headers: {}, body: '', query: old })).toMatchObject({ statusCode: 403, body: 'stale' });
  });

  it('POST: records, enqueues one message per subject, answers success', async () => {
    const { inbox, queue, post } = setup();
    const r = buildPost(contactEvent(CORP, 'update_user', { UserID: 'a', NewUserID: 'b' }), keys);
    const res = await post(r.query, r.body);
    expect(res).toMatchObject({ statusCode: 200, body: 'success' });
    expect(queue.sent.map((m) => m.subject)).toEqual(['user:a', 'user:b']);
    const [item] = [...inbox.items.values()];
    expect(item).toMatchObject({ source: 'wecom', kind: 'change_contact/update_user', disposition: 'accepted', status: 'enqueued' });
    expect(item!.id).toMatch(/^[0-9a-f]{64}$/);
    expect(queue.sent[0]).toMatchObject({ v: 1, source: 'wecom', eventId: item!.id, hint: 'update_user', operator: 'wecom-callback' });
    // Redelivery: success, nothing more enqueued.
    expect((await post(r.query, r.body)).body).toBe('success');
    expect(queue.sent).toHaveLength(2);
  });
  it('POST: an event we do not act on is recorded as ignored and answered success', async () => {
    const { inbox, queue, post } = setup();
    const r = buildPost(vectors.post.plaintext, keys);
    expect((await post(r.query, r.body)).body).toBe('success');
    expect([...inbox.items.values()][0]).toMatchObject({ kind: 'text', disposition: 'ignored', subjects: [] });
    expect(queue.sent).toEqual([]);
  });
  it('POST: enqueue failure → 503, inbox stays pending, retry enqueues', async () => {
    const { inbox, queue, post } = setup();
    const r = buildPost(contactEvent(CORP, 'delete_party', { Id: '9' }), keys);
    queue.fail = true;
    expect((await post(r.query, r.body)).statusCode).toBe(503);
    expect([...inbox.items.values()][0]!.status).toBe('pending');
    queue.fail = false;
    expect((await post(r.query, r.body)).body).toBe('success');
    expect(queue.sent.map((m) => m.subject)).toEqual(['party:9']);
    expect([...inbox.items.values()][0]!.status).toBe('enqueued');
  });
  it('POST: the replay window applies both ways and is configurable', async () => {
    const now = new Date('2026-03-01T00:00:00Z');
    const t = Math.floor(now.getTime() / 1000);
    const { post } = setup(now);
    const xml = contactEvent(CORP, 'create_user', { UserID: 'a' });
    for (const [dt, code] of [[-601, 403], [601, 403], [-599, 200], [599, 200]] as const) {
      const r = buildPost(xml, keys, { timestamp: t + dt });
      expect((await post(r.query, r.body)).statusCode, `skew ${dt}`).toBe(code);
    }
    const strict = createCallbackReceiver({ keys, inbox: new MemInbox(), queue: new MemQueue(), now: () => now, replayWindowSeconds: 30 });
    const r = buildPost(xml, keys, { timestamp: t - 60 });
    expect((await strict({ method: 'POST', path: '/', headers: {}, query: r.query, body: r.body })).body).toBe('stale');
  });
  it('POST: rejections write and enqueue nothing, with short generic reasons', async () => {
    const { inbox, queue, post } = setup();
    const xml = contactEvent(CORP, 'create_user', { UserID: 'a' });
    const good = buildPost(xml, keys);
    const cases: Array<[string, Record<string, string>, string, number, string]> = [
      ['forged', buildPost(xml, keys, { signToken: 'nope' }).query, good.body, 403, 'invalid signature or payload'],
      ['no signature', { timestamp: good.query.timestamp!, nonce: good.query.nonce! }, good.body, 403, 'invalid signature or payload'],
      ['no timestamp', { msg_signature: good.query.msg_signature!, nonce: good.query.nonce! }, good.body, 403, 'invalid signature or payload'],
      ['wrong corp', ...(() => { const r = buildPost(xml, keys, { receiveId: 'wwOTHER' }); return [r.query, r.body] as const; })(), 403, 'invalid signature or payload'],
      ['too large', good.query, good.body.replace('<xml>', '<xml>' + ' '.repeat(70_000)), 413, 'too large'],
      ['not xml', good.query, 'hello', 400, 'malformed'],
      ['schema', ...(() => { const r = buildPost(contactEvent(CORP, 'create_user', {}), keys); return [r.query, r.body] as const; })(), 400, 'malformed'],
    ];
    for (const [name, q, body, code, reason] of cases) {
      const res = await post(q, body);
      expect(res.statusCode, name).toBe(code);
      expect(res.body, name).toBe(reason);
    }
    expect(inbox.items.size).toBe(0);
    expect(queue.sent).toEqual([]);
  });
  it('refuses other methods', async () => {
    const { receive } = setup();
    expect((await receive({ method: 'PUT', path: '/', headers: {}, query: {}, body: '' })).statusCode).toBe(405);
  });
});

/**
 * Parsing and validation of WeCom callback XML: the outer envelope (which carries only the
 * `Encrypt` value) and the decrypted inner event. Both parses run with entity processing
 * OFF, and any DOCTYPE / ENTITY declaration is refused before the parser sees it, so XXE
 * and entity-expansion bombs cannot get in.
 *
 * Recent WeCom apps receive no sensitive fields: an event is only a signal naming who
 * changed. `subjectsOf` turns it into the subjects the worker must re-read (level-driven).
 *
 * Speed: fast-xml-parser costs ~20 µs a document (a validation pass and a parse pass), more
 * than the cipher. WeCom's documents have one flat shape — `<xml>` holding children that are
 * each plain text or one CDATA section — so `parseFlat` reads that shape in one linear scan
 * and gives the very object fast-xml-parser would; any other shape (attributes, nesting,
 * entities, comments, a declaration, CR line ends, repeated or reserved names …) goes to
 * fast-xml-parser as before (test/unit/callback-events.test.ts compares the two).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
// zod/mini: the same validation at ~16 KB instead of ~440 KB in the bundle (cold start).
import * as z from 'zod/mini';
import { partySubject, userSubject, type Subject } from '../core/model';
import { CallbackRejected } from './crypto';

const parser = new XMLParser({
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Keep every value a string: '0001' must stay '0001', ids are compared as text.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  maxNestedTags: 8,
});

/** Declarations are never legitimate in a callback; refusing them outright is the XXE defence. */
const DECLARATION = /<!\s*(doctype|entity|element|attlist)/i;

/** Parse a callback XML document into its `<xml>` root object; CallbackRejected('malformed') on anything odd. */
export function parseXmlRoot(xml: string): Record<string, unknown> {
  if (DECLARATION.test(xml)) throw new CallbackRejected('malformed');
  return parseFlat(xml) ?? parseXmlFull(xml);
}

/**
 * fast-xml-parser: a validation pass, then the parse (entities off). Only parseXmlRoot calls it
 * in the product, after refusing declarations; exported for the test that holds parseFlat to it.
 */
export function parseXmlFull(xml: string): Record<string, unknown> {
  if (XMLValidator.validate(xml) !== true) throw new CallbackRejected('malformed');
  let doc: unknown;
  try {
    doc = parser.parse(xml);
  } catch {
    throw new CallbackRejected('malformed');
  }
  const root = (doc as { xml?: unknown } | undefined)?.xml;
  if (!root || typeof root !== 'object' || Array.isArray(root)) throw new CallbackRejected('malformed');
  return root as Record<string, unknown>;
}

/**
 * Element names the fast path takes: ASCII, no leading underscore. fast-xml-parser refuses or
 * renames names that collide with Object.prototype (`constructor`, `__proto__`, `toString` →
 * `__toString`, case-insensitively), so those are left to it.
 */
const FLAT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const RESERVED = new Set(['constructor', 'prototype', 'hasownproperty', 'tostring', 'valueof']);
const CDATA_OPEN = '<![CDATA[';

/** Index of the first character at or after `i` that is not a space, tab or LF. */
function skipSpace(s: string, i: number): number {
  for (let c = s.charCodeAt(i); c === 32 || c === 9 || c === 10; c = s.charCodeAt(++i));
  return i;
}

/**
 * The flat shape WeCom sends, or undefined for anything else (the caller then runs
 * fast-xml-parser). `<xml>` first, then children `<Name>text</Name>` (text without `<` or
 * `&`, trimmed as fast-xml-parser trims it) or `<Name><![CDATA[value]]></Name>` (kept as is),
 * separated by spaces, tabs or LFs, then `</xml>` and optional trailing whitespace. A
 * document holding CR is left to the full parser, which normalises line ends.
 */
export function parseFlat(xml: string): Record<string, string> | undefined {
  if (!xml.startsWith('<xml>') || xml.includes('\r')) return undefined;
  const out: Record<string, string> = {};
  let children = 0;
  let i = 5;
  for (;;) {
    i = skipSpace(xml, i);
    if (xml.charCodeAt(i) !== 60 /* < */) return undefined;
    if (xml.charCodeAt(i + 1) === 47 /* / */) break;
    const nameEnd = xml.indexOf('>', i + 1);
    if (nameEnd < 0) return undefined;
    const name = xml.slice(i + 1, nameEnd);
    if (!FLAT_NAME.test(name) || RESERVED.has(name.toLowerCase()) || name in out) return undefined;
    let j = nameEnd + 1;
    let value: string;
    if (xml.startsWith(CDATA_OPEN, j)) {
      const end = xml.indexOf(']]>', j + CDATA_OPEN.length);
      if (end < 0) return undefined;
      value = xml.slice(j + CDATA_OPEN.length, end);
      j = end + 3;
    } else {
      const lt = xml.indexOf('<', j);
      if (lt < 0) return undefined;
      value = xml.slice(j, lt);
      if (value.includes('&')) return undefined;
      value = value.trim();
      j = lt;
    }
    // The closing tag must follow at once: no mixed content, no nesting.
    if (xml.charCodeAt(j) !== 60 || xml.charCodeAt(j + 1) !== 47 || !xml.startsWith(name, j + 2) || xml.charCodeAt(j + 2 + name.length) !== 62) {
      return undefined;
    }
    i = j + name.length + 3;
    out[name] = value;
    children++;
  }
  if (children === 0 || !xml.startsWith('</xml>', i) || skipSpace(xml, i + 6) !== xml.length) return undefined;
  return out;
}

const Envelope = z.object({
  Encrypt: z.string().check(z.minLength(1), z.maxLength(65_536)),
  ToUserName: z.optional(z.string().check(z.maxLength(128))),
  AgentID: z.optional(z.string().check(z.maxLength(32))),
});

/** The outer POST body: returns the `Encrypt` value (the signed, encrypted event). */
export function parseEnvelope(xml: string): { encrypt: string } {
  const r = Envelope.safeParse(parseXmlRoot(xml));
  if (!r.success) throw new CallbackRejected('malformed');
  return { encrypt: r.data.Encrypt };
}

// ------------------------------------------------------------------ inner event

/** WeCom userid: 1-64 of letters, digits and `_-@.`. */
const USERID = /^[A-Za-z0-9_@.-]{1,64}$/;
/** Department and tag ids are positive integers. */
const NUM_ID = /^[0-9]{1,12}$/;

const matching = (re: RegExp) => z.string().check(z.regex(re));
const userId = matching(USERID);
const numId = matching(NUM_ID);
/** Comma-separated item lists of update_tag; empty or absent means none. */
const list = (item: RegExp) =>
  z.pipe(
    z.pipe(
      z.optional(z.string()),
      z.transform((s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : [])),
    ),
    z.array(matching(item)).check(z.maxLength(1000)),
  );

const Base = z.object({
  MsgType: matching(/^[a-z_]{1,40}$/),
  Event: z.optional(matching(/^[A-Za-z_]{1,60}$/)),
  ChangeType: z.optional(matching(/^[a-z_]{1,60}$/)),
});

const UserChange = z.object({
  ChangeType: z.enum(['create_user', 'update_user', 'delete_user']),
  UserID: userId,
  NewUserID: z.optional(userId),
});
const PartyChange = z.object({
  ChangeType: z.enum(['create_party', 'update_party', 'delete_party']),
  Id: numId,
});
const TagChange = z.object({
  ChangeType: z.literal('update_tag'),
  TagId: numId,
  AddUserItems: list(USERID),
  DelUserItems: list(USERID),
  AddPartyItems: list(NUM_ID),
  DelPartyItems: list(NUM_ID),
});

export type ContactChange =
  | { type: 'user'; changeType: 'create_user' | 'update_user' | 'delete_user'; userId: string; newUserId?: string }
  | { type: 'party'; changeType: 'create_party' | 'update_party' | 'delete_party'; partyId: string }
  | {
      type: 'tag';
      changeType: 'update_tag';
      tagId: string;
      addUserItems: string[];
      delUserItems: string[];
      addPartyItems: string[];
      delPartyItems: string[];
    };

export interface WecomEvent {
  /** e.g. 'change_contact/create_user', 'event/batch_job_result', 'text'. Safe to log. */
  kind: string;
  /** Present for the contact changes we act on; absent for valid events we ignore. */
  change?: ContactChange;
}

const HANDLED_CHANGES = new Set([
  'create_user',
  'update_user',
  'delete_user',
  'create_party',
  'update_party',
  'delete_party',
  'update_tag',
]);

/**
 * Parse and validate the decrypted inner message. Throws CallbackRejected('malformed') for
 * XML that does not parse or a handled event type missing its ids; returns an event without
 * `change` for valid messages we do not act on (text messages, batch_job_result, unknown
 * change types), so the caller records them as ignored and WeCom stops retrying.
 */
export function parseEvent(xml: string): WecomEvent {
  const root = parseXmlRoot(xml);
  const base = Base.safeParse(root);
  if (!base.success) throw new CallbackRejected('malformed');
  const { MsgType, Event, ChangeType } = base.data;
  if (MsgType !== 'event') return { kind: MsgType };
  if (!Event) throw new CallbackRejected('malformed');
  if (Event !== 'change_contact') return { kind: `event/${Event}` };
  if (!ChangeType) throw new CallbackRejected('malformed');
  const kind = `change_contact/${ChangeType}`;
  if (!HANDLED_CHANGES.has(ChangeType)) return { kind };

  const fail = () => new CallbackRejected('malformed');
  if (ChangeType.endsWith('_user')) {
    const r = UserChange.safeParse(root);
    if (!r.success) throw fail();
    const change: ContactChange = { type: 'user', changeType: r.data.ChangeType, userId: r.data.UserID };
    if (r.data.NewUserID && r.data.NewUserID !== r.data.UserID) change.newUserId = r.data.NewUserID;
    return { kind, change };
  }
  if (ChangeType.endsWith('_party')) {
    const r = PartyChange.safeParse(root);
    if (!r.success) throw fail();
    return { kind, change: { type: 'party', changeType: r.data.ChangeType, partyId: r.data.Id } };
  }
  const r = TagChange.safeParse(root);
  if (!r.success) throw fail();
  return {
    kind,
    change: {
      type: 'tag',
      changeType: 'update_tag',
      tagId: r.data.TagId,
      addUserItems: r.data.AddUserItems,
      delUserItems: r.data.DelUserItems,
      addPartyItems: r.data.AddPartyItems,
      delPartyItems: r.data.DelPartyItems,
    },
  };
}

/**
 * The subjects an event says may have changed, deduplicated, in a stable order. A userid
 * change names both the old and the new userid (the worker retires one, creates the other);
 * a tag change names every user and department added to or removed from the tag.
 */
export function subjectsOf(event: WecomEvent): Subject[] {
  const c = event.change;
  if (!c) return [];
  const out: Subject[] = [];
  switch (c.type) {
    case 'user':
      out.push(userSubject(c.userId));
      if (c.newUserId) out.push(userSubject(c.newUserId));
      break;
    case 'party':
      out.push(partySubject(c.partyId));
      break;
    case 'tag':
      for (const u of [...c.addUserItems, ...c.delUserItems]) out.push(userSubject(u));
      for (const p of [...c.addPartyItems, ...c.delPartyItems]) out.push(partySubject(p));
      break;
  }
  return [...new Set(out)];
}

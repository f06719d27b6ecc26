/**
 * Finding a person: by userid, by name, or by mobile — without a mobile ever being stored or
 * sent in clear. The state table (the people we manage) is the index:
 *  - a full mobile number is normalized to E.164 and compared by its keyed hash (the same
 *    HMAC the sync stores), so no ciphertext is opened to search;
 *  - a masked mobile as the console and the audit show it (`138****8000`, `+86138****8000`)
 *    is matched by masking each stored mobile the same way (they are opened one by one);
 *  - anything else matches userid or name, case-insensitively, as a substring.
 * A userid that is in WeCom but not (yet) in the state is found too, so a person the sync has
 * never seen can be synced by hand.
 */
import { maskPhone } from '../../../functions/core/redact';
import { userSubject, type Subject } from '../../../functions/core/model';
import type { StateRecord } from '../../../functions/store/ports';
import type { EngineDeps } from '../../../functions/sync/context';
import { normalizePhone } from '../../../functions/sync/normalize';

export interface PersonHit {
  subject: Subject;
  userid: string;
  name?: string;
  status?: StateRecord['status'];
  departments?: string[];
  /** Masked (e.g. +86138****8000), when the state holds a mobile. */
  mobile?: string;
  /** Found in WeCom only: the sync has no state for this person yet. */
  wecomOnly?: boolean;
}

export type QueryKind = 'mobile' | 'masked-mobile' | 'text';

export function queryKind(query: string): QueryKind {
  const q = query.trim();
  if (/^\+?[\d\s()-]*\*{2,}[\d\s()-]*$/.test(q) && /\d/.test(q)) return 'masked-mobile';
  if (/^\+?[\d\s()-]{7,}$/.test(q) && q.replace(/\D/g, '').length >= 7) return 'mobile';
  return 'text';
}

/** `138****8000` and `+86138****8000` name the same mask: compare without the country code. */
function maskKey(masked: string): string {
  return masked.replace(/\s|-/g, '').replace(/^\+86/, '');
}

export async function searchPeople(deps: EngineDeps, query: string, limit = 50): Promise<{ hits: PersonHit[]; more: boolean }> {
  const q = query.trim();
  if (!q) return { hits: [], more: false };
  const kind = queryKind(q);
  const wantHash = kind === 'mobile' ? await mobileHash(deps, q) : undefined;
  if (kind === 'mobile' && !wantHash) return { hits: [], more: false };
  const needle = q.toLowerCase();

  const matches: StateRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.state.listPage('user', cursor);
    for (const r of page.records) {
      if (await matchesRecord(deps, r, kind, needle, wantHash)) matches.push(r);
    }
    cursor = page.next;
  } while (cursor);

  matches.sort((a, b) => a.wecomId.localeCompare(b.wecomId));
  const hits = await Promise.all(matches.slice(0, limit).map((r) => hitOf(deps, r)));
  if (kind === 'text' && !hits.some((h) => h.userid === q) && /^[A-Za-z0-9_.@-]{1,64}$/.test(q)) {
    const w = await deps.wecom.getUser(q);
    if (w) hits.unshift({ subject: userSubject(w.userid), userid: w.userid, ...(w.name ? { name: w.name } : {}), wecomOnly: true });
  }
  return { hits, more: matches.length > limit };
}

async function mobileHash(deps: EngineDeps, raw: string): Promise<string | undefined> {
  const phone = normalizePhone(raw);
  return phone.ok ? deps.cipher.hash('mobile', phone.e164) : undefined;
}

async function matchesRecord(deps: EngineDeps, r: StateRecord, kind: QueryKind, needle: string, hash: string | undefined): Promise<boolean> {
  if (kind === 'mobile') return r.sensitive.mobile?.h === hash;
  if (kind === 'masked-mobile') {
    const mobile = await openMobile(deps, r);
    return mobile !== undefined && maskKey(maskPhone(mobile)) === maskKey(needle);
  }
  const name = typeof r.fields.name === 'string' ? r.fields.name.toLowerCase() : '';
  return r.wecomId.toLowerCase().includes(needle) || name.includes(needle);
}

async function openMobile(deps: EngineDeps, r: StateRecord): Promise<string | undefined> {
  const sealed = r.sensitive.mobile;
  if (!sealed) return undefined;
  try {
    return await deps.cipher.open(sealed, { table: deps.stateTable, subject: r.subject, field: 'mobile' });
  } catch {
    return undefined; // a value that does not open is shown as absent, never as an error page
  }
}

async function hitOf(deps: EngineDeps, r: StateRecord): Promise<PersonHit> {
  const mobile = await openMobile(deps, r);
  return {
    subject: r.subject,
    userid: r.wecomId,
    ...(typeof r.fields.name === 'string' ? { name: r.fields.name } : {}),
    status: r.status,
    ...(Array.isArray(r.fields.departments) ? { departments: r.fields.departments as string[] } : {}),
    ...(mobile ? { mobile: maskPhone(mobile) } : {}),
  };
}

/**
 * Active Directory specifics of the LDAP adapter, on recorded entry shapes (what ldapts returns
 * from a Windows Server DC): there is no AD on this machine or in CI, so the objectGUID byte
 * order, userAccountControl, Exchange's recipient types, DN escapes and the uSNChanged feed
 * (per-DC marks, a change of DC, a restored DC, changes during the read) are checked here
 * against the published rules (docs/providers/ldap.md, Sources). The OpenLDAP profile runs
 * against a real slapd (test/mailbox/ldap.test.ts, test/integration/ldap-feed.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { GreaterThanEqualsFilter, type Filter } from 'ldapts';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { MailboxError } from '../../functions/mailbox/directory';
import { ldapProfile } from '../../functions/mailbox/ldap/config';
import type { LdapEntry } from '../../functions/mailbox/ldap/client';
import { ldapError } from '../../functions/mailbox/ldap/client';
import { clientSource, formatGeneralizedTime, parseGeneralizedTime, pollChanges, type DcState, type PollSource } from '../../functions/mailbox/ldap/feed';
import {
  enabledChange,
  guidToBytes,
  guidToString,
  idFilter,
  isDisabled,
  ouPath,
  parseDn,
  toAccount,
  toAddAttributes,
  toChanges,
} from '../../functions/mailbox/ldap/wire';
import type { FeedCursorStore } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';
import { ResultCodeError, BusyError, InvalidCredentialsError, NoSuchObjectError } from 'ldapts';

const config = parseRuntimeConfig({ provider: 'ldap', mailDomain: 'corp.example.com', ldap: { schema: 'ad', urls: ['ldaps://dc1.corp.example.com'], baseDn: 'OU=People,DC=corp,DC=example,DC=com', writes: true } });
const ad = ldapProfile(config.ldap);

/** MS-DTYP 2.3.4: {00112233-4455-6677-8899-AABBCCDDEEFF} is stored as 33 22 11 00 55 44 77 66 88 99 AA BB CC DD EE FF. */
const GUID_WIRE = Buffer.from('33221100554477668899aabbccddeeff', 'hex');
const GUID_TEXT = '00112233-4455-6677-8899-aabbccddeeff';

/** A user as ldapts returns it from a DC (attribute names in AD's case, objectGUID as bytes). */
function adUser(over: Partial<Record<string, string | Buffer | string[]>> = {}): LdapEntry {
  return {
    dn: 'CN=zhangsan,OU=研发组,OU=技术部,OU=People,DC=corp,DC=example,DC=com',
    objectGUID: GUID_WIRE,
    employeeID: 'zhangsan',
    mail: 'ZhangSan@Corp.Example.com',
    displayName: '张三',
    cn: 'zhangsan',
    mobile: '+86 138 0013 8000',
    telephoneNumber: '+86 10 8888 6666',
    title: '工程师',
    department: '技术部/研发组',
    userAccountControl: '512',
    uSNChanged: '123457',
    ...over,
  } as LdapEntry;
}

describe('AD objectGUID: the GUID string writes the first three fields little-endian', () => {
  it('bytes → string and back (MS-DTYP GUID layout)', () => {
    expect(guidToString(GUID_WIRE)).toBe(GUID_TEXT);
    expect(guidToBytes(GUID_TEXT)!.equals(GUID_WIRE)).toBe(true);
    expect(guidToBytes(GUID_TEXT.toUpperCase())!.equals(GUID_WIRE)).toBe(true);
    expect(guidToBytes('not-a-guid')).toBeUndefined();
    expect(() => guidToString(Buffer.alloc(15))).toThrow(MailboxError);
  });

  it('a search by id sends the 16 bytes in wire order, each escaped (RFC 4515)', () => {
    expect(idFilter(ad, GUID_TEXT)!.toString()).toBe('(objectGUID=\\33\\22\\11\\00\\55\\44\\77\\66\\88\\99\\aa\\bb\\cc\\dd\\ee\\ff)');
    expect(idFilter(ad, 'zhangsan')).toBeUndefined(); // not a GUID: matches nothing, no search
  });
});

describe('AD entries → accounts', () => {
  it('the recorded shape reads as the port shows it: id, link, canonical address and phones', () => {
    expect(toAccount(ad, adUser())).toEqual({
      id: GUID_TEXT,
      employeeId: 'zhangsan',
      enabled: true,
      displayName: '张三',
      email: 'zhangsan@corp.example.com',
      mailNickname: null,
      mobile: '+8613800138000',
      telephone: '+861088886666',
      jobTitle: '工程师',
      department: '技术部/研发组',
      kind: 'member',
    });
  });

  it('userAccountControl bit 0x2 is disabled, whatever the other bits', () => {
    for (const [uac, disabled] of [
      ['512', false], // NORMAL_ACCOUNT
      ['514', true], // + ACCOUNTDISABLE
      ['66048', false], // + DONT_EXPIRE_PASSWORD
      ['66050', true],
      ['544', false], // PASSWD_NOTREQD
      ['546', true],
    ] as const) {
      expect(isDisabled(ad, adUser({ userAccountControl: uac })), uac).toBe(disabled);
      expect(toAccount(ad, adUser({ userAccountControl: uac })).enabled).toBe(!disabled);
    }
  });

  it('disable / enable flip bit 0x2 only, keeping the others', () => {
    const value = (uac: string, enabled: boolean) => enabledChange(ad, adUser({ userAccountControl: uac }), enabled).modification.values[0];
    expect(value('512', false)).toBe('514');
    expect(value('66048', false)).toBe('66050');
    expect(value('66050', true)).toBe('66048');
    expect(value('514', true)).toBe('512');
    expect(enabledChange(ad, adUser(), false)).toMatchObject({ operation: 'replace', modification: { type: 'userAccountControl' } });
  });

  it("Exchange's shared, room and equipment mailboxes are not people (msExchRecipientTypeDetails 4 / 16 / 32)", () => {
    expect(toAccount(ad, adUser({ msExchRecipientTypeDetails: '1' })).kind).toBe('member');
    for (const t of ['4', '16', '32']) expect(toAccount(ad, adUser({ msExchRecipientTypeDetails: t })).kind).toBe('shared');
  });

  it('absent attributes are cleared values; attribute names match whatever their case', () => {
    const e = adUser({ MOBILE: '+8613900139000' });
    delete (e as Record<string, unknown>).mobile;
    delete (e as Record<string, unknown>).title;
    delete (e as Record<string, unknown>).displayName;
    expect(toAccount(ad, e)).toMatchObject({ mobile: '+8613900139000', jobTitle: null, displayName: 'zhangsan' });
  });
});

describe('DNs and the OU path as department', () => {
  const base = 'OU=People,DC=corp,DC=example,DC=com';
  it('OUs under the base, top-down; escapes undone; another subtree is no department', () => {
    expect(ouPath('CN=zhangsan,OU=研发组,OU=技术部,OU=People,DC=corp,DC=example,DC=com', base)).toBe('技术部/研发组');
    expect(ouPath('CN=Zhang\\, San,OU=R\\2BD,OU=People,DC=corp,DC=example,DC=com', base)).toBe('R+D');
    expect(ouPath('CN=x,OU=\\E6\\8A\\80\\E6\\9C\\AF\\E9\\83\\A8,ou=people,dc=corp,dc=example,dc=com', base)).toBe('技术部');
    expect(ouPath('CN=x,OU=People,DC=corp,DC=example,DC=com', base)).toBeNull();
    expect(ouPath('CN=x,OU=Other,DC=corp,DC=example,DC=com', base)).toBeNull();
    expect(parseDn('CN=Zhang\\, San+sn=x,OU=A')).toEqual([
      ['CN', 'Zhang, San'],
      ['OU', 'A'],
    ]);
  });
});

describe('AD writes', () => {
  const input = { employeeId: 'lisi', email: 'LiSi@corp.example.com', displayName: '李四', mobile: '+8613700137000', department: '市场部' };
  it('a new user: user class, sAMAccountName + UPN from the local part, a random password as unicodePwd, a normal account that must change it', () => {
    const attrs = Object.fromEntries(toAddAttributes(ad, input, 'corp.example.com', 'Pa55word!Pa55word!ab').map((a) => [a.type, a.values]));
    expect(attrs).toMatchObject({
      objectClass: ['top', 'person', 'organizationalPerson', 'user'],
      cn: ['lisi'],
      sAMAccountName: ['lisi'],
      userPrincipalName: ['lisi@corp.example.com'],
      employeeID: ['lisi'],
      mail: ['lisi@corp.example.com'],
      displayName: ['李四'],
      mobile: ['+8613700137000'],
      department: ['市场部'],
      userAccountControl: ['512'],
      pwdLastSet: ['0'],
    });
    // unicodePwd: the password in double quotes, UTF-16LE (MS-ADTS 3.1.1.3.1.5).
    expect(Buffer.from(attrs.unicodePwd![0] as unknown as Buffer).toString('utf16le')).toBe('"Pa55word!Pa55word!ab"');
    const disabled = Object.fromEntries(toAddAttributes(ad, { ...input, enabled: false }, 'corp.example.com', 'x').map((a) => [a.type, a.values]));
    expect(disabled.userAccountControl).toEqual(['514']);
  });

  it('refusals name no value: a local part longer than sAMAccountName allows, an empty name', () => {
    const errors = [
      (() => { try { toAddAttributes(ad, { ...input, email: 'a-very-long-local-part-indeed@corp.example.com' }, 'corp.example.com', 'x'); } catch (e) { return e; } })(),
      (() => { try { toChanges(ad, { displayName: null }); } catch (e) { return e; } })(),
    ];
    for (const e of errors) {
      expect(e).toMatchObject({ kind: 'invalid', retryable: false });
      expect(String((e as Error).message)).not.toMatch(/a-very-long|lisi|李四/);
    }
  });

  it('a userid longer than employeeID holds (16) is refused before the write, with the fix and without the userid; employeeNumber takes it', () => {
    const long = 'zhang.sanfeng-2026'; // 18 characters: a valid WeCom userid
    for (const write of [() => toAddAttributes(ad, { ...input, employeeId: long }, 'corp.example.com', 'x'), () => toChanges(ad, { employeeId: long })]) {
      let err: unknown;
      try {
        write();
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ kind: 'invalid', retryable: false });
      expect(String((err as Error).message)).toMatch(/at most 16 characters.*employeeNumber/);
      expect(String((err as Error).message)).not.toContain(long);
    }
    expect(toChanges(ad, { employeeId: 'zhang.sanfeng-26' }).map((c) => c.modification.values)).toEqual([['zhang.sanfeng-26']]); // 16: fits
    const mapped = { ...ad, attributes: { ...ad.attributes, employeeId: 'employeeNumber' } };
    expect(toChanges(mapped, { employeeId: long }).map((c) => [c.modification.type, c.modification.values])).toEqual([['employeeNumber', [long]]]);
  });

  it('a partial update names only the keys present; null clears with an empty replace', () => {
    const changes = toChanges(ad, { jobTitle: null, mobile: '+8613700137000' });
    expect(changes.map((c) => [c.operation, c.modification.type, c.modification.values])).toEqual([
      ['replace', 'mobile', ['+8613700137000']],
      ['replace', 'title', []],
    ]);
  });
});

describe('LDAP result codes → the port words, no server text', () => {
  it('busy is throttled, invalid credentials auth, noSuchObject not-found; a dropped connection is unavailable', () => {
    const withText = <T extends ResultCodeError>(e: T) => Object.assign(e, { message: '0000052D: AtrErr: DSID-03190F80, #1: CN=Zhang San,OU=People' });
    expect(ldapError(withText(new BusyError('x')), 'modify entry')).toMatchObject({ kind: 'throttled', retryable: true, code: 'busy' });
    expect(ldapError(withText(new InvalidCredentialsError('x')), 'bind')).toMatchObject({ kind: 'auth', retryable: false });
    const nf = ldapError(withText(new NoSuchObjectError('x')), 'modify entry');
    expect(nf).toMatchObject({ kind: 'not-found', retryable: false });
    expect(nf.message).toBe('LDAP modify entry failed: 32 noSuchObject');
    expect(ldapError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'search by id')).toMatchObject({ kind: 'unavailable', retryable: true });
    expect(ldapError(Object.assign(new Error('x'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), 'bind')).toMatchObject({ kind: 'auth', retryable: false });
  });
});

// ------------------------------------------------------------------ the uSNChanged feed

interface FakeDc extends DcState {
  entries: LdapEntry[];
}

function fakeSource(dc: () => FakeDc): PollSource & { filters: string[] } {
  const filters: string[] = [];
  return {
    filters,
    async dcState() {
      const { entries: _, ...state } = dc();
      return state;
    },
    async *scan(extra: Filter | undefined) {
      filters.push(extra ? extra.toString() : '(all)');
      const ge = extra instanceof GreaterThanEqualsFilter ? extra : undefined;
      const list = dc().entries.filter((e) => {
        if (!ge) return true;
        const v = String(e[ge.attribute] ?? '');
        return ge.attribute === 'whenChanged' ? (parseGeneralizedTime(v) ?? 0) >= (parseGeneralizedTime(ge.value) ?? 0) : BigInt(v || '0') >= BigInt(ge.value);
      });
      for (let i = 0; i < list.length; i += 2) yield list.slice(i, i + 2);
    },
  };
}

function guid(n: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(n, 12);
  return b;
}

function memory(): FeedCursorStore & { value?: string } {
  const s: FeedCursorStore & { value?: string } = {
    get: async () => s.value,
    put: async (v) => void (s.value = v),
  };
  return s;
}

describe('the uSNChanged feed (Microsoft: read highestCommittedUSN first, then uSNChanged >= mark + 1; per DC)', () => {
  const at = new Date('2026-12-03T10:00:00Z');
  const user = (n: number, usn: number, whenChanged = '20261203095000.0Z') => ({ ...adUser({ objectGUID: guid(n), uSNChanged: String(usn) }), whenChanged }) as LdapEntry;
  const run = async (src: PollSource, cursor: FeedCursorStore, known?: string[], now = at) => {
    const queued: SyncMessage[] = [];
    const r = await pollChanges(src, {
      profile: ad,
      feed: { overlapSeconds: 60, deletionSweepMinutes: 0, rebaseMinutes: 60 },
      cursor,
      enqueue: async (m) => void queued.push(...m),
      ...(known ? { known: async function* () { yield* known; } } : {}),
      now: () => now,
    });
    return { r, queued, subjects: queued.map((m) => m.subject).sort() };
  };

  it('first run: the mark is the DC’s highestCommittedUSN, nothing queued; then only entries above it, each once', async () => {
    let dc: FakeDc = { dc: 'dc1.corp.example.com', invocationId: 'aaaaaaaa-0000-0000-0000-000000000001', usn: 1000n, time: at, entries: [user(1, 900), user(2, 950)] };
    const src = fakeSource(() => dc);
    const cursor = memory();
    expect((await run(src, cursor)).r).toMatchObject({ caughtUp: { changed: 0, full: true } });
    expect(JSON.parse(cursor.value!)).toMatchObject({ kind: 'usn', mark: '1000', dc: { name: 'dc1.corp.example.com' } });

    dc = { ...dc, usn: 1010n, entries: [user(1, 900), user(2, 1005), user(3, 1008)] };
    const second = await run(src, cursor);
    expect(src.filters.at(-1)).toBe('(uSNChanged>=1001)');
    expect(second.subjects).toEqual([`mailbox:ldap:${guidToString(guid(2))}`, `mailbox:ldap:${guidToString(guid(3))}`].sort());
    expect(JSON.parse(cursor.value!).mark).toBe('1010');

    expect((await run(src, cursor)).queued).toEqual([]);
    expect(src.filters.at(-1)).toBe('(uSNChanged>=1011)');
  });

  it('an entry changed while the pages were read (USN above the mark read first) is queued once, not again next time', async () => {
    let dc: FakeDc = { dc: 'dc1', usn: 2000n, entries: [] };
    const src = fakeSource(() => dc);
    const cursor = memory();
    await run(src, cursor);
    dc = { ...dc, usn: 2010n, entries: [user(7, 2005), user(8, 2013)] }; // 2013: committed after highestCommittedUSN was read
    expect((await run(src, cursor)).queued).toHaveLength(2);
    expect(JSON.parse(cursor.value!).seen).toHaveLength(1);
    dc = { ...dc, usn: 2020n };
    expect((await run(src, cursor)).queued).toEqual([]); // 2013 is re-read (>= 2011) and skipped
    dc = { ...dc, usn: 2030n, entries: [user(8, 2025)] };
    expect((await run(src, cursor)).queued).toHaveLength(1); // a later change of the same entry
  });

  it('another DC answers (USNs are not replicated): changes are re-read by whenChanged from an hour before the last poll', async () => {
    let dc: FakeDc = { dc: 'dc1', usn: 5000n, time: at, entries: [] };
    const src = fakeSource(() => dc);
    const cursor = memory();
    await run(src, cursor);
    dc = { dc: 'dc2', usn: 88_000n, time: new Date(at.getTime() + 600_000), entries: [user(1, 87_000, '20261203091500.0Z'), user(2, 87_500, '20261203085000.0Z')] };
    const r = await run(src, cursor);
    expect(src.filters.at(-1)).toBe(`(whenChanged>=${formatGeneralizedTime(at.getTime() / 1000 - 3600)})`);
    expect(r.subjects).toEqual([`mailbox:ldap:${guidToString(guid(1))}`]); // 08:50 is before 09:00
    expect(JSON.parse(cursor.value!)).toMatchObject({ mark: '88000', dc: { name: 'dc2' } });
    expect((await run(src, cursor)).queued).toEqual([]);
    expect(src.filters.at(-1)).toBe('(uSNChanged>=88001)');
  });

  it('the same DC restored from a backup (new invocationId) is treated like another DC', async () => {
    let dc: FakeDc = { dc: 'dc1', invocationId: '11111111-0000-0000-0000-000000000000', usn: 9000n, time: at, entries: [] };
    const src = fakeSource(() => dc);
    const cursor = memory();
    await run(src, cursor);
    dc = { ...dc, invocationId: '22222222-0000-0000-0000-000000000000', usn: 8500n, entries: [user(4, 8400, '20261203095900.0Z')] };
    const r = await run(src, cursor);
    expect(src.filters.at(-1)).toMatch(/^\(whenChanged>=/);
    expect(r.queued).toHaveLength(1);
  });

  it('deletions: AD moves a deleted user out of the tree, so a known GUID missing from it is queued once', async () => {
    const dc: FakeDc = { dc: 'dc1', usn: 100n, entries: [user(1, 50)] };
    const src = fakeSource(() => dc);
    const cursor = memory();
    const known = [guidToString(guid(1)), guidToString(guid(2))];
    const first = await run(src, cursor, known);
    expect(first.subjects).toEqual([`mailbox:ldap:${guidToString(guid(2))}`]);
    expect(first.queued[0]!.hint).toBe('ldap.gone');
    expect((await run(src, cursor, known)).queued).toEqual([]);
  });

  it('the rootDSE and NTDS Settings as a DC answers them', async () => {
    const invocation = Buffer.from('33221100554477668899aabbccddeeff', 'hex');
    const source = clientSource({
      profile: ad,
      pageSize: 500,
      users: (f) => f!,
      client: {
        rootDse: async () => ({
          dn: '',
          highestCommittedUSN: '4153211',
          dnsHostName: 'DC1.corp.example.com',
          dsServiceName: 'CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=corp,DC=example,DC=com',
          currentTime: '20261203100000.0Z',
        }),
        search: async () => [{ dn: 'CN=NTDS Settings,…', invocationId: invocation }],
        pages: async function* () {},
      },
    });
    expect(await source.dcState()).toEqual({ dc: 'DC1.corp.example.com', invocationId: GUID_TEXT, usn: 4153211n, time: new Date('2026-12-03T10:00:00Z') });
    const notAd = clientSource({ profile: ad, pageSize: 500, users: (f) => f!, client: { rootDse: async () => ({ dn: '' }), search: async () => [], pages: async function* () {} } });
    await expect(notAd.dcState()).rejects.toMatchObject({ kind: 'invalid', code: 'NoUsn' });
  });

  it('generalized time: AD’s fraction and offsets, OpenLDAP’s plain form', () => {
    expect(parseGeneralizedTime('20261203102342Z')).toBe(Date.UTC(2026, 11, 3, 10, 23, 42) / 1000);
    expect(parseGeneralizedTime('20261203102342.0Z')).toBe(Date.UTC(2026, 11, 3, 10, 23, 42) / 1000);
    expect(parseGeneralizedTime('20261203182342+0800')).toBe(Date.UTC(2026, 11, 3, 10, 23, 42) / 1000);
    expect(parseGeneralizedTime('garbage')).toBeUndefined();
    expect(formatGeneralizedTime(Date.UTC(2026, 11, 3, 10, 23, 42) / 1000)).toBe('20261203102342Z');
  });
});

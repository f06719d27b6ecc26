/**
 * The simulated Exmail tenant: members (keyed by lower-case address), the department tree,
 * and the operation log — journaled when persisted (../journal.ts), so a local stack restarted
 * on the same directory finds its tenant, and a feed cursor issued before the restart still
 * reads the same log.
 */
import { SimJournal } from '../journal';

export interface ExmailSimUser {
  userid: string;
  name: string;
  department: number[];
  position: string;
  mobile: string;
  tel: string;
  extid: string;
  gender: number;
  enable: 0 | 1;
  slaves: string[];
  cpwd_login: 0 | 1;
}

export interface ExmailSimDepartment {
  id: number;
  name: string;
  parentid: number;
  order: number;
}

/** One operation-log record as the API answers it, plus the request category it belongs to. */
export interface ExmailSimLogRecord {
  time: number;
  operator: string;
  type: number;
  operand: string;
  remark?: number;
  /** The `type` filter of log/operation that finds it (1 开放协议同步, 7 成员与群组管理; 0 finds all). */
  category: number;
}

export interface ExmailSimState {
  users: Map<string, ExmailSimUser>;
  departments: Map<number, ExmailSimDepartment>;
  /** seq → record, in the order they happened. */
  log: Map<number, ExmailSimLogRecord>;
  nextDepartmentId(): number;
  append(record: ExmailSimLogRecord): void;
  /** Is the address a member's or one of their aliases (other than `exceptUser`'s)? */
  addressTaken(address: string, exceptUser?: string): boolean;
  /** Store a member (again, after a change in place: the journal and the alias index follow). */
  putUser(u: ExmailSimUser): void;
  removeUser(userid: string): void;
}

export const ROOT = 1;

export function openState(persistDir: string | undefined, rootName: string): ExmailSimState {
  const journal = new SimJournal(persistDir, 'exmail');
  const users = journal.map<string, ExmailSimUser>('users');
  const departments = journal.map<number, ExmailSimDepartment>('departments');
  const log = journal.map<number, ExmailSimLogRecord>('log');
  const meta = journal.map<string, number>('meta');
  journal.load();
  if (!departments.has(ROOT)) departments.set(ROOT, { id: ROOT, name: rootName, parentid: 0, order: 0 });
  let seq = meta.get('logSeq') ?? log.size;
  let dept = meta.get('nextDept') ?? Math.max(ROOT, ...departments.keys()) + 1;
  const aliases = new Map<string, string>();
  const indexAliases = (u: ExmailSimUser) => {
    for (const s of u.slaves) aliases.set(s.toLowerCase(), u.userid);
  };
  const unindexAliases = (userid: string) => {
    for (const [a, owner] of aliases) if (owner === userid) aliases.delete(a);
  };
  for (const u of users.values()) indexAliases(u);
  return {
    users,
    departments,
    log,
    nextDepartmentId() {
      const id = dept++;
      meta.set('nextDept', dept);
      return id;
    },
    append(record) {
      seq += 1;
      log.set(seq, record);
      meta.set('logSeq', seq);
    },
    addressTaken(address, exceptUser) {
      const a = address.toLowerCase();
      const owner = users.has(a) ? a : aliases.get(a);
      return owner !== undefined && owner !== exceptUser;
    },
    putUser(u) {
      const old = users.get(u.userid);
      if (old?.slaves.length) unindexAliases(u.userid);
      users.set(u.userid, u);
      indexAliases(u);
    },
    removeUser(userid) {
      const old = users.get(userid);
      if (old?.slaves.length) unindexAliases(userid);
      users.delete(userid);
    },
  };
}

/** A member with Exmail's defaults for what is not given. */
export function newUser(p: Partial<ExmailSimUser> & { userid: string; name: string }): ExmailSimUser {
  return {
    userid: p.userid.toLowerCase(),
    name: p.name,
    department: p.department ?? [ROOT],
    position: p.position ?? '',
    mobile: p.mobile ?? '',
    tel: p.tel ?? '',
    extid: p.extid ?? '',
    gender: p.gender ?? 0,
    enable: p.enable ?? 1,
    slaves: p.slaves ?? [],
    cpwd_login: p.cpwd_login ?? 0,
  };
}

/** Departments at or under `id`. */
export function subtree(departments: Map<number, ExmailSimDepartment>, id: number): Set<number> {
  const out = new Set<number>([id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of departments.values()) {
      if (!out.has(d.id) && out.has(d.parentid)) {
        out.add(d.id);
        grew = true;
      }
    }
  }
  return out;
}

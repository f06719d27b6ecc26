/**
 * A throwaway OpenLDAP server for tests and the bench: Debian's `slapd` (installed by .ci/run),
 * started unprivileged-style on free loopback ports with its own slapd.conf, database and
 * certificates in a temp directory, stopped and removed afterwards. Never the system's slapd.
 *
 * - Schemas: core, cosine, inetorgperson (/etc/ldap/schema); modules from /usr/lib/ldap:
 *   back_mdb, ppolicy (defines pwdAccountLockedTime, the OpenLDAP profile's disabled flag),
 *   auditlog (every write as LDIF with its modifier: the conformance probe's view of the wire).
 * - TLS: a test CA and a server certificate for 127.0.0.1 / localhost, made with `openssl`
 *   once per process (EC P-256, valid two days); `ldaps://` and StartTLS on `ldap://`. A second,
 *   unrelated CA is there to be refused.
 * - Identities: the rootdn (`cn=admin,<suffix>`) for arranging and observing, and
 *   `cn=sync,<suffix>`, an ordinary entry with write access to `ou=people` — what the adapter
 *   binds as, as a real deployment would.
 * - Seeding: `slapadd` offline before the start (fast: the bench loads 50,000 entries this way).
 *
 * `slapdBinary()` is undefined when slapd is not installed: tests skip with that reason; CI
 * installs it and sets REQUIRE_SLAPD=1, under which a missing slapd is an error, not a skip.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';

export const SUFFIX = 'dc=example,dc=com';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const ADMIN_DN = `cn=admin,${SUFFIX}`;
export const ADMIN_PW = 'admin-secret';
export const SYNC_DN = `cn=sync,${SUFFIX}`;
export const SYNC_PW = 'sync-secret';

const CANDIDATES = ['/usr/sbin/slapd', '/usr/local/sbin/slapd', '/usr/local/libexec/slapd'];
const MODULES = ['/usr/lib/ldap', '/usr/lib/x86_64-linux-gnu/ldap', '/usr/lib/aarch64-linux-gnu/ldap', '/usr/local/libexec/openldap'];
const SCHEMAS = ['/etc/ldap/schema', '/usr/local/etc/openldap/schema', '/etc/openldap/schema'];

/** The slapd binary, or undefined (then tests skip, saying so). */
export function slapdBinary(): string | undefined {
  const found = CANDIDATES.find((p) => existsSync(p));
  // CI installs slapd and sets REQUIRE_SLAPD: there a missing server fails the run instead of skipping it.
  if (!found && process.env.REQUIRE_SLAPD === '1') throw new Error(`REQUIRE_SLAPD=1 but ${SKIP_REASON}`);
  return found;
}

export const SKIP_REASON = 'slapd is not installed (Debian: apt-get install slapd ldap-utils; .ci/run does)';

export interface TestCa {
  caPem: string;
  /** A CA that did not sign the server's certificate. */
  wrongCaPem: string;
  certFile: string;
  keyFile: string;
  caFile: string;
}

let ca: TestCa | undefined;

/** The test CA and the server certificate (127.0.0.1, localhost), made once per process with openssl. */
export function testCa(): TestCa {
  if (ca) return ca;
  const dir = mkdtempSync(join(tmpdir(), 'wms-ldap-ca-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=wecom-mailbox-sync test CA');
  openssl('req', '-x509', ...ec, '-keyout', 'wrong.key', '-out', 'wrong.pem', '-days', '2', '-subj', '/CN=some other CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  ca = {
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    wrongCaPem: readFileSync(join(dir, 'wrong.pem'), 'utf8'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    caFile: join(dir, 'ca.pem'),
  };
  return ca;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface SlapdOptions {
  /** Extra LDIF loaded with slapadd before the start (after the suffix, ou=people and cn=sync). */
  seedLdif?: string;
  /** Write the auditlog (default true). */
  auditlog?: boolean;
  /** Extra `index` lines, e.g. ['modifyTimestamp eq']. */
  indexes?: string[];
}

export interface Slapd {
  url: string;
  ldapsUrl: string;
  ca: TestCa;
  pid: number;
  dir: string;
  /** The auditlog's text (writes with their modifier). */
  auditLog(): string;
  /** A client bound as the rootdn (closed by stop()). */
  admin(): Promise<Client>;
  stop(): Promise<void>;
}

const BASE_LDIF = `dn: ${SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ${SYNC_DN}
objectClass: person
objectClass: simpleSecurityObject
cn: sync
sn: sync
userPassword: ${SYNC_PW}

dn: ${PEOPLE}
objectClass: organizationalUnit
ou: people
`;

export async function startSlapd(o: SlapdOptions = {}): Promise<Slapd> {
  const binary = slapdBinary();
  if (!binary) throw new Error(SKIP_REASON);
  const modules = MODULES.find((d) => existsSync(join(d, 'back_mdb.la')) || existsSync(join(d, 'back_mdb.so')));
  const schemas = SCHEMAS.find((d) => existsSync(join(d, 'inetorgperson.schema')));
  if (!schemas) throw new Error('slapd is installed but its schema files (inetorgperson.schema) were not found');
  const tls = testCa();
  const dir = mkdtempSync(join(tmpdir(), 'wms-slapd-'));
  mkdirSync(join(dir, 'db'));
  const audit = join(dir, 'audit.ldif');
  const conf = [
    `include ${schemas}/core.schema`,
    `include ${schemas}/cosine.schema`,
    `include ${schemas}/inetorgperson.schema`,
    ...(modules ? [`modulepath ${modules}`, 'moduleload back_mdb', 'moduleload ppolicy', ...(o.auditlog === false ? [] : ['moduleload auditlog'])] : []),
    `pidfile ${join(dir, 'slapd.pid')}`,
    `TLSCACertificateFile ${tls.caFile}`,
    `TLSCertificateFile ${tls.certFile}`,
    `TLSCertificateKeyFile ${tls.keyFile}`,
    'sizelimit unlimited',
    'database mdb',
    `suffix "${SUFFIX}"`,
    `rootdn "${ADMIN_DN}"`,
    `rootpw ${ADMIN_PW}`,
    `directory ${join(dir, 'db')}`,
    'maxsize 1073741824',
    // A test server: no fsync per write (a crash loses the throwaway database, nothing else).
    'dbnosync',
    'index objectClass eq',
    'index entryUUID eq',
    'index employeeNumber eq',
    'index mail eq',
    'index uid eq',
    ...(o.indexes ?? []).map((i) => `index ${i}`),
    'access to attrs=userPassword by self write by anonymous auth by * none',
    `access to dn.subtree="${PEOPLE}" by dn.exact="${SYNC_DN}" write by users read by * none`,
    'access to * by users read by * none',
    'overlay ppolicy',
    ...(o.auditlog === false ? [] : ['overlay auditlog', `auditlog ${audit}`]),
    '',
  ].join('\n');
  const confFile = join(dir, 'slapd.conf');
  writeFileSync(confFile, conf);
  writeFileSync(join(dir, 'base.ldif'), BASE_LDIF);
  execFileSync(binary, ['-T', 'add', '-q', '-f', confFile, '-l', join(dir, 'base.ldif')], { stdio: 'pipe' });
  if (o.seedLdif) {
    writeFileSync(join(dir, 'seed.ldif'), o.seedLdif);
    execFileSync(binary, ['-T', 'add', '-q', '-f', confFile, '-l', join(dir, 'seed.ldif')], { stdio: 'pipe', maxBuffer: 64 << 20 });
  }
  if (o.auditlog !== false) writeFileSync(audit, '');

  const [port, tlsPort] = [await freePort(), await freePort()];
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;
  const child: ChildProcess = spawn(binary, ['-f', confFile, '-h', `${url}/ ${ldapsUrl}/`, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitForPort(port, 5_000, exited, () => stderr);

  const admins: Client[] = [];
  return {
    url,
    ldapsUrl,
    ca: tls,
    pid: child.pid!,
    dir,
    auditLog: () => (existsSync(audit) ? readFileSync(audit, 'utf8') : ''),
    async admin() {
      const c = new Client({ url, timeout: 10_000 });
      await c.bind(ADMIN_DN, ADMIN_PW);
      admins.push(c);
      return c;
    },
    async stop() {
      await Promise.all(admins.map((c) => c.unbind().catch(() => undefined)));
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, timeoutMs: number, exited: Promise<number | null>, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead: number | null | undefined;
  void exited.then((code) => (dead = code));
  while (Date.now() < deadline) {
    if (dead !== undefined) throw new Error(`slapd exited (${dead}) before listening: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`slapd did not listen on ${port} within ${timeoutMs} ms: ${stderr()}`);
}

/** One block of the auditlog: the operation, its target, its modifier, and the attributes it named. */
export interface AuditRecord {
  op: 'add' | 'modify' | 'delete' | 'modrdn';
  dn: string;
  modifier: string;
  attributes: string[];
}

/** Parses slapo-auditlog's LDIF ("# modify <time> <suffix> <modifier> …" … "# end modify …"). */
export function parseAuditLog(text: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  const blocks = text.split(/^# end \w+ .*$/m);
  for (const block of blocks) {
    const head = /^# (add|modify|delete|modrdn) \d+ \S+ (.+?)(?: IP=\S+)?(?: conn=\d+)?$/m.exec(block);
    if (!head) continue;
    const lines = block.slice(head.index + head[0].length).split('\n');
    let dn = '';
    const attributes: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.startsWith(' ')) continue; // folded continuation
      let full = line;
      while (lines[i + 1]?.startsWith(' ')) full += lines[++i]!.slice(1);
      const m = /^([A-Za-z][\w;-]*)(::?)\s?(.*)$/.exec(full);
      if (!m) continue;
      const [, key, sep, value] = m;
      if (key === 'dn') dn = sep === '::' ? Buffer.from(value!, 'base64').toString('utf8') : value!;
      else if (key === 'changetype') continue;
      else if (head[1] === 'modify' && (key === 'replace' || key === 'add' || key === 'delete')) attributes.push(value!.trim());
      else if (head[1] === 'add') attributes.push(key!);
    }
    out.push({ op: head[1] as AuditRecord['op'], dn, modifier: head[2]!.trim(), attributes: [...new Set(attributes.map((a) => a.toLowerCase()))] });
  }
  return out;
}

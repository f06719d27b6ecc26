/**
 * LDAP on a real OpenLDAP server (Debian's slapd, a throwaway instance): the adapter contract,
 * then what only LDAP has — read-only by default, LDAPS / StartTLS with the test CA (and a wrong
 * CA refused), plaintext refused, the OU path as department, a listing cursor that lives in its
 * process. Active Directory has no server here: its specifics (objectGUID byte order,
 * userAccountControl, uSNChanged) are unit tests on recorded entry shapes
 * (test/unit/ldap-ad.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MailboxError } from '../../functions/mailbox/directory';
import type { LdapDirectory } from '../../functions/mailbox/ldap/directory';
import { SKIP_REASON, slapdBinary, SYNC_DN } from '../support/slapd';
import { mailboxConformance } from './conformance';
import { zhangsan } from './cases/people';
import { freshBase, LDAP_PAGE_SIZE, ldapConnection, ldapOnSlapd, sharedAdmin, sharedSlapd, stopSharedSlapd } from './subjects/ldap-slapd';

const available = slapdBinary() !== undefined;
const caps = { groups: false, restore: false, pageSize: LDAP_PAGE_SIZE };

afterAll(stopSharedSlapd);

describe.skipIf(!available)(available ? 'ldap on slapd' : `ldap on slapd — skipped: ${SKIP_REASON}`, () => {
  mailboxConformance('ldap (OpenLDAP, slapd)', ldapOnSlapd(), caps);

  describe('ldap: what only LDAP has', () => {
    it('read-only by default: capabilities say so, every write is refused before it is sent, reads work', async () => {
      const base = await freshBase('ro');
      const rw = await ldapConnection(base);
      const ro = await ldapConnection(base, { ldap: { writes: false } });
      try {
        expect(ro.capabilities).toMatchObject({ writes: false, groups: false, restore: false, changes: 'poll' });
        expect(rw.capabilities.writes).toBe(true);
        const a = await rw.directory.create(zhangsan);
        for (const op of [
          () => ro.directory.create({ ...zhangsan, email: 'other@example.com' }),
          () => ro.directory.update(a.id, { jobTitle: 'x' }),
          () => ro.directory.disable(a.id),
          () => ro.directory.enable(a.id),
          () => ro.directory.delete(a.id),
        ]) {
          await expect(op()).rejects.toMatchObject({ kind: 'invalid', retryable: false, code: 'ReadOnly' });
        }
        expect(await ro.directory.findByEmployeeId('zhangsan')).toMatchObject({ id: a.id, enabled: true, jobTitle: '工程师' });
      } finally {
        await (rw.directory as LdapDirectory).close();
        await (ro.directory as LdapDirectory).close();
      }
    });

    it('LDAPS with the test CA: the probe binds and says TLS verified; StartTLS on ldap:// too', async () => {
      const slapd = await sharedSlapd();
      const base = await freshBase('tls');
      const ldaps = await ldapConnection(base, { urls: [slapd.ldapsUrl], ldap: { allowPlaintext: false }, secret: { caCert: slapd.ca.caPem } });
      const starttls = await ldapConnection(base, { urls: [slapd.url], ldap: { allowPlaintext: false, startTls: true }, secret: { caCert: slapd.ca.caPem } });
      try {
        for (const c of [ldaps, starttls]) {
          const [probe] = c.health();
          expect(probe!.name).toBe('ldap-bind');
          expect(await probe!.run(new Date())).toMatchObject({ ok: true, detail: expect.stringContaining('TLS verified') });
          const a = await c.directory.create({ ...zhangsan, employeeId: `tls-${c === ldaps ? 'ldaps' : 'starttls'}`, email: `${c === ldaps ? 'ldaps' : 'starttls'}@example.com` });
          expect((await c.directory.get(a.id))?.email).toBe(`${c === ldaps ? 'ldaps' : 'starttls'}@example.com`);
        }
      } finally {
        await (ldaps.directory as LdapDirectory).close();
        await (starttls.directory as LdapDirectory).close();
      }
    });

    it('a server certificate from another CA is refused: auth, not retryable, no DN or value in the error', async () => {
      const slapd = await sharedSlapd();
      const base = await freshBase('wrongca');
      for (const o of [
        { urls: [slapd.ldapsUrl], ldap: { allowPlaintext: false }, secret: { caCert: slapd.ca.wrongCaPem } },
        { urls: [slapd.url], ldap: { allowPlaintext: false, startTls: true }, secret: { caCert: slapd.ca.wrongCaPem } },
      ]) {
        const c = await ldapConnection(base, o);
        try {
          const err = await c.directory.findByEmployeeId('zhangsan').catch((e: unknown) => e);
          expect(err).toBeInstanceOf(MailboxError);
          expect(err).toMatchObject({ kind: 'auth', retryable: false });
          expect((err as Error).message).toMatch(/TLS certificate was refused/);
          const probe = await c.health()[0]!.run(new Date()).catch((e: unknown) => e);
          expect(probe).toMatchObject({ kind: 'auth' });
          expect(`${(err as Error).message} ${JSON.stringify(err)}`).not.toMatch(/dc=|cn=|sync-secret/);
        } finally {
          await (c.directory as LdapDirectory).close();
        }
      }
    });

    it('ldap:// without StartTLS is refused unless allowPlaintext says so; a wrong password is auth', async () => {
      const base = await freshBase('plain');
      const plain = await ldapConnection(base, { ldap: { allowPlaintext: false } });
      const wrong = await ldapConnection(base, { secret: { bindPassword: 'not-the-password' } });
      try {
        await expect(plain.directory.get('5b725e88-834f-1041-93fb-47f39e8b13fb')).rejects.toMatchObject({ kind: 'invalid', code: 'PlaintextRefused', retryable: false });
        const err = await wrong.directory.findByEmployeeId('zhangsan').catch((e: unknown) => e);
        expect(err).toMatchObject({ kind: 'auth', retryable: false, code: 'invalidCredentials' });
        expect(`${(err as Error).message} ${JSON.stringify(err)}`).not.toMatch(/dc=|cn=|not-the-password/);
      } finally {
        await (plain.directory as LdapDirectory).close();
        await (wrong.directory as LdapDirectory).close();
      }
    });

    it('the department from the OU path (read-only: a department write is refused as invalid)', async () => {
      const base = await freshBase('ou');
      const admin = await sharedAdmin();
      await admin.add(`ou=技术部,${base}`, { objectClass: ['organizationalUnit'], ou: '技术部' });
      await admin.add(`ou=研发组,ou=技术部,${base}`, { objectClass: ['organizationalUnit'], ou: '研发组' });
      await admin.add(`uid=wangwu,ou=研发组,ou=技术部,${base}`, { objectClass: ['inetOrgPerson'], uid: 'wangwu', cn: '王五', sn: '王', employeeNumber: 'wangwu', mail: 'wangwu@example.com' });
      await admin.add(`uid=top,${base}`, { objectClass: ['inetOrgPerson'], uid: 'top', cn: 'Top', sn: 'Top', employeeNumber: 'top' });
      const c = await ldapConnection(base, { ldap: { department: { from: 'ou-path' } } });
      try {
        const w = await c.directory.findByEmployeeId('wangwu');
        expect(w).toMatchObject({ department: '技术部/研发组', displayName: '王五', email: 'wangwu@example.com', enabled: true, kind: 'member' });
        expect((await c.directory.findByEmployeeId('top'))?.department).toBeNull();
        await expect(c.directory.update(w!.id, { department: '市场部' })).rejects.toMatchObject({ kind: 'invalid', code: 'DepartmentFromOuPath' });
      } finally {
        await (c.directory as LdapDirectory).close();
      }
    });

    it('a listing cursor lives in the process (and connection) that started it: elsewhere it is refused, the listing starts over', async () => {
      const base = await freshBase('cursor');
      const a = await ldapConnection(base);
      const b = await ldapConnection(base);
      try {
        for (let i = 0; i < LDAP_PAGE_SIZE + 1; i++) await a.directory.create({ employeeId: `c${i}`, email: `c${i}@example.com`, displayName: `C${i}` });
        const first = await a.directory.listPage();
        expect(first.next).toBeDefined();
        await expect(b.directory.listPage(first.next)).rejects.toMatchObject({ kind: 'invalid', code: 'CursorExpired', retryable: false });
        const second = await a.directory.listPage(first.next);
        expect(first.accounts.length + second.accounts.length).toBe(LDAP_PAGE_SIZE + 1);
        expect(second.next).toBeUndefined();
      } finally {
        await (a.directory as LdapDirectory).close();
        await (b.directory as LdapDirectory).close();
      }
    });

    it('the adapter binds as an ordinary account, not the rootdn (what the docs tell an operator to create)', async () => {
      const slapd = await sharedSlapd();
      const base = await freshBase('who');
      const c = await ldapConnection(base);
      try {
        await c.directory.create({ ...zhangsan, employeeId: 'who', email: 'who@example.com' });
        expect(slapd.auditLog()).toContain(`# add`);
        expect(slapd.auditLog()).toMatch(new RegExp(`# add \\d+ \\S+ ${SYNC_DN.replace(/[=,]/g, '.')}`));
      } finally {
        await (c.directory as LdapDirectory).close();
      }
    });
  });
});

/**
 * The engine's FakeMailbox (test/support/sync-fakes.ts) under the conformance suite: the
 * engine's tests are only as true as this fake, so it keeps the same contract as the real
 * adapters.
 */
import { FakeMailbox } from '../../support/sync-fakes';
import type { MailboxUnderTest } from '../conformance';

export const FAKE_PAGE_SIZE = 4;

export function fakeMailbox(): () => Promise<MailboxUnderTest> {
  return async () => {
    const fake = new FakeMailbox({ pageSize: FAKE_PAGE_SIZE });
    let seen = 0;
    return {
      directory: fake,
      probe: {
        writes() {
          const fresh = fake.writes.slice(seen);
          seen = fake.writes.length;
          return fresh
            .filter((w) => w.op === 'create' || w.op === 'update')
            .map((w) => ({ op: w.op as 'create' | 'update', fields: Object.keys(w.patch as object) }));
        },
        async adminSetMobile(id, mobile) {
          fake.admin(id, { mobile });
        },
        async adminCreate(email) {
          fake.seed({ email, displayName: 'Someone else' });
        },
        async stored() {
          return [...fake.accounts.values()].filter((a) => !a.deleted);
        },
        async members(groupId) {
          return [...(fake.groups.get(groupId)?.members ?? [])];
        },
        storm(rate) {
          fake.failRate = rate;
        },
      },
    };
  };
}

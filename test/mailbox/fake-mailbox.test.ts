/** The engine's FakeMailbox keeps the contract the real adapters keep. */
import { mailboxConformance } from './conformance';
import { FAKE_PAGE_SIZE, fakeMailbox } from './subjects/fake';

mailboxConformance('FakeMailbox', fakeMailbox(), { groups: true, restore: true, pageSize: FAKE_PAGE_SIZE });

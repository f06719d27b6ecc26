/** Tencent Exmail on its simulator: the adapter contract (no groups, no recycle bin: config.ts says why). */
import { mailboxConformance } from './conformance';
import { EXMAIL_PAGE_SIZE, exmailSubject } from './subjects/exmail-sim';

mailboxConformance('exmail', exmailSubject(), { groups: false, restore: false, pageSize: EXMAIL_PAGE_SIZE });

/** Google Workspace on its simulator: the adapter contract (no groups: Google Groups is another API; see docs/providers/google.md). */
import { mailboxConformance } from './conformance';
import { GOOGLE_PAGE_SIZE, googleOnSim } from './subjects/google-sim';

mailboxConformance('google', googleOnSim(), { groups: false, restore: true, pageSize: GOOGLE_PAGE_SIZE });

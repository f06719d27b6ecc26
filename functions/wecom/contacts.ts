/**
 * The WeCom contacts port: what the sync needs from WeCom. Implemented by `api.ts` over
 * HTTPS (and, in tests and the local stack, pointed at the loopback WeCom simulator).
 * Values are WeCom's raw shapes; normalization happens in `sync/normalize.ts`.
 */
import { ProviderError } from '../core/errors';

/** WeCom `user/get` response fields we use. Absent = WeCom did not give it (unknown). */
export interface WecomUser {
  userid: string;
  name?: string;
  mobile?: string;
  telephone?: string;
  email?: string;
  biz_mail?: string;
  position?: string;
  department?: number[];
  main_department?: number;
  /** 1 enabled, 0 disabled. */
  enable?: number;
  /** 1 active, 2 disabled, 4 not yet active, 5 left. */
  status?: number;
  address?: string;
  extattr?: { attrs?: Array<{ type?: number; name: string; value?: string; text?: { value: string } }> };
}

export interface WecomDepartment {
  id: number;
  name: string;
  parentid: number;
  order?: number;
}

export interface WecomContacts {
  /** undefined when the user does not exist (errcode 60111). */
  getUser(userid: string): Promise<WecomUser | undefined>;
  /** All userids (user/list_id, paged internally). */
  listUserIds(): Promise<string[]>;
  /**
   * One page of user/list_id (a member in several departments may appear more than once, and
   * on two pages): `next` is the cursor of the following page, absent on the last. Reconcile
   * pages with it to hold one page at a time; a port without it is listed in one page.
   */
  listUserIdPage?(cursor?: string): Promise<{ ids: string[]; next?: string }>;
  listDepartments(): Promise<WecomDepartment[]>;
  updateUser(userid: string, patch: Partial<Omit<WecomUser, 'userid'>>): Promise<void>;
  /** Deleting a user that does not exist (60111) is a success. */
  deleteUser(userid: string): Promise<void>;
  /** Add users to a tag (the onboarding gate's optional "provisioned" tag). */
  addTagUsers?(tagId: number, userids: string[]): Promise<void>;
  /** Create a member (lifecycle.source 'mailbox'). The userid, name and a department are required. */
  createUser(user: WecomUserInput): Promise<void>;
  /** Create a department under `parentId`; returns its id (lifecycle.createDepartments). */
  createDepartment(name: string, parentId: number): Promise<number>;
}

/** What user/create takes (contacts-sync secret). `mobile` in WeCom's form: "+86 13800138000". */
export interface WecomUserInput {
  userid: string;
  name: string;
  department: number[];
  main_department?: number;
  mobile?: string;
  telephone?: string;
  email?: string;
  position?: string;
  address?: string;
  /** 0: created disabled (held until the record is complete). */
  enable: 0 | 1;
}

export class WecomApiError extends ProviderError {
  constructor(
    message: string,
    readonly errcode: number,
    retryable: boolean,
    retryAfterMs?: number,
  ) {
    super(message, retryable, errcode, retryAfterMs);
    this.name = 'WecomApiError';
  }
}

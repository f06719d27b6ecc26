/**
 * Canonical contact → the mailbox port's input. The port speaks canonical values; each
 * adapter owns its provider's attribute names (Graph: displayName, mobilePhone, …).
 *
 * personalEmail, address and extattr have no place in the mailbox port: they are never sent,
 * whatever the profile says (the profile can only narrow what leaves WeCom).
 */
import type { MailboxAccountInput } from '../mailbox/directory';
import type { Contact } from '../core/model';

/**
 * With `changes`, only the changed fields (a PATCH; null clears). Without, every known field
 * (a create: a null there is nothing to clear, so it is not sent).
 */
export function toMailboxInput(contact: Contact, changes?: ReadonlyArray<{ field: string }>): MailboxAccountInput {
  const patch = changes !== undefined;
  const wanted = (field: keyof Contact, value: unknown) =>
    value !== undefined && (patch ? changes.some((c) => c.field === field) : value !== null);
  const input: MailboxAccountInput = {};
  if (wanted('name', contact.name)) input.displayName = contact.name ?? null;
  if (wanted('email', contact.email)) input.email = contact.email ?? null;
  if (wanted('mobile', contact.mobile)) input.mobile = contact.mobile ?? null;
  if (wanted('telephone', contact.telephone)) input.telephone = contact.telephone ?? null;
  if (wanted('position', contact.position)) input.jobTitle = contact.position ?? null;
  if (wanted('departments', contact.departments)) input.department = contact.departments?.[0] ?? null;
  return input;
}

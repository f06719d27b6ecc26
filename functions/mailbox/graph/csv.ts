/**
 * Microsoft 365 admin center → Users → Active users → Add multiple users: the sample CSV
 * ("Add several users at the same time to Microsoft 365", support.office.com article
 * 1f5767ed-e717-4f24-969c-6ea9d412ca88):
 *   User Name, First Name, Last Name, Display Name, Job Title, Department, Office Number,
 *   Office Phone, Mobile Phone, Fax, Alternate email address, Address, City,
 *   State or Province, ZIP or Postal Code, Country or Region
 * (older copies of the sample lack "Alternate email address"; import accepts both).
 *
 * Microsoft requires "the exact same column headings as the sample" and values for User Name
 * and Display Name. So the WeCom link (Graph `employeeId`) is NOT exported: the template has
 * no column for it and an extra one may make the import fail. An imported row therefore
 * carries no userid: it names a mailbox, not a managed person. First/Last Name are left
 * empty (splitting Chinese names into given name/surname is guesswork); Office Number, Fax
 * and the postal columns are not in our model (imported, they are only checked).
 */
import type { MailboxCsvTemplate } from '../csv-template';

export const M365_COLUMNS = [
  'User Name',
  'First Name',
  'Last Name',
  'Display Name',
  'Job Title',
  'Department',
  'Office Number',
  'Office Phone',
  'Mobile Phone',
  'Fax',
  'Alternate email address',
  'Address',
  'City',
  'State or Province',
  'ZIP or Postal Code',
  'Country or Region',
] as const;

export const m365Template: MailboxCsvTemplate = {
  name: 'm365',
  title: 'the Microsoft 365 template',
  columns: M365_COLUMNS,
  spec: [
    { names: ['User Name'], key: 'email', kind: 'email', required: true },
    { names: ['First Name'], key: 'firstName', kind: 'text' },
    { names: ['Last Name'], key: 'lastName', kind: 'text' },
    { names: ['Display Name'], key: 'name', kind: 'text', required: true },
    { names: ['Job Title'], key: 'position', kind: 'text' },
    { names: ['Department'], key: 'departments', kind: 'text' },
    { names: ['Office Number'], key: 'office', kind: 'text' },
    { names: ['Office Phone'], key: 'telephone', kind: 'phone' },
    { names: ['Mobile Phone'], key: 'mobile', kind: 'phone' },
    { names: ['Fax'], key: 'fax', kind: 'phone' },
    { names: ['Alternate email address'], key: 'personalEmail', kind: 'email' },
    { names: ['Address'], key: 'address', kind: 'text' },
    { names: ['City'], key: 'city', kind: 'text' },
    { names: ['State or Province'], key: 'state', kind: 'text' },
    { names: ['ZIP or Postal Code'], key: 'zip', kind: 'text' },
    { names: ['Country or Region'], key: 'country', kind: 'text' },
  ],
  row: (a) => [
    { kind: 'text', value: a.email },
    '', // First Name
    '', // Last Name
    { kind: 'text', value: a.displayName },
    { kind: 'text', value: a.jobTitle },
    { kind: 'text', value: a.department },
    '', // Office Number
    { kind: 'phone', value: a.telephone },
    { kind: 'phone', value: a.mobile },
    '', // Fax
    '', // Alternate email address
    '',
    '',
    '',
    '',
    '',
  ],
};

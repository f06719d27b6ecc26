/**
 * DynamoDB tables derived from functions/store/tables.ts — the same key schemas and GSIs the
 * local stack and the tests create with dynalite — so local and deployed tables cannot drift.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import type { Construct } from 'constructs';
import { TTL_ATTRIBUTE, tableDefinitions, type TableNames } from '../functions/store/tables';

export type TableRole = keyof Required<TableNames>;

/** Placeholder names to pick each definition out of tableDefinitions(); CloudFormation names the real tables. */
const ROLE_NAMES: Required<TableNames> = { inbox: 'inbox', state: 'state', audit: 'audit', reconcile: 'reconcile' };

export interface TableOptions {
  encryptionKey: kms.IKey;
  /** TTL attribute (the store code writes epoch seconds into it). */
  ttl: boolean;
  /** State and audit are the system of record: deletion protection and RETAIN (inbox and reconcile are scratch). */
  protect: boolean;
}

function attributeType(def: CreateTableCommandInput, name: string): dynamodb.AttributeType {
  const t = def.AttributeDefinitions?.find((a) => a.AttributeName === name)?.AttributeType;
  switch (t) {
    case 'S':
      return dynamodb.AttributeType.STRING;
    case 'N':
      return dynamodb.AttributeType.NUMBER;
    case 'B':
      return dynamodb.AttributeType.BINARY;
    default:
      throw new Error(`table ${def.TableName}: attribute ${name} has no definition`);
  }
}

function keys(def: CreateTableCommandInput, schema: CreateTableCommandInput['KeySchema']) {
  const hash = schema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
  const range = schema?.find((k) => k.KeyType === 'RANGE')?.AttributeName;
  if (!hash) throw new Error(`table ${def.TableName}: no HASH key`);
  return {
    partitionKey: { name: hash, type: attributeType(def, hash) },
    sortKey: range ? { name: range, type: attributeType(def, range) } : undefined,
  };
}

export function tableDefinition(role: TableRole): CreateTableCommandInput {
  const def = tableDefinitions(ROLE_NAMES).find((d) => d.TableName === ROLE_NAMES[role]);
  if (!def) throw new Error(`functions/store/tables.ts defines no ${role} table`);
  return def;
}

/** Index names of a table, for IAM resources that name each index instead of `index/*`. */
export function indexNames(role: TableRole): string[] {
  return (tableDefinition(role).GlobalSecondaryIndexes ?? []).map((g) => g.IndexName!);
}

export function createTable(scope: Construct, id: string, role: TableRole, opts: TableOptions): dynamodb.Table {
  const def = tableDefinition(role);
  if (def.BillingMode !== 'PAY_PER_REQUEST') throw new Error(`table ${role}: only on-demand billing is mapped`);
  const table = new dynamodb.Table(scope, id, {
    ...keys(def, def.KeySchema),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey: opts.encryptionKey,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: opts.ttl ? TTL_ATTRIBUTE : undefined,
    deletionProtection: opts.protect,
    // Inbox rows are short-lived dedupe records (TTL): losing them on stack deletion loses nothing.
    removalPolicy: opts.protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  });
  for (const gsi of def.GlobalSecondaryIndexes ?? []) {
    const projection = gsi.Projection?.ProjectionType ?? 'ALL';
    table.addGlobalSecondaryIndex({
      indexName: gsi.IndexName!,
      ...keys(def, gsi.KeySchema),
      projectionType:
        projection === 'KEYS_ONLY'
          ? dynamodb.ProjectionType.KEYS_ONLY
          : projection === 'INCLUDE'
            ? dynamodb.ProjectionType.INCLUDE
            : dynamodb.ProjectionType.ALL,
      nonKeyAttributes: projection === 'INCLUDE' ? gsi.Projection?.NonKeyAttributes : undefined,
    });
  }
  return table;
}

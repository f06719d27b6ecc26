/**
 * Key schemas of the three tables, shared by the CDK stack (lib/), the local stack and the
 * tests, so the tables that run locally are the tables that deploy.
 *
 *  inbox  pk (S)                         — one item per received event; TTL attribute `expiresAt`
 *         GSI pending: pendingKey (S), receivedAt (S) — SPARSE: pendingKey exists only while the
 *                                          item is `pending` (markEnqueued removes it), so the
 *                                          index holds just the items a sweep may have to re-enqueue
 *  state  pk (S), sk (S)                 — subject items (sk = 'state'), uniqueness claims
 *                                          (pk = 'uniq#<field>#<hash>', sk = 'claim'), meta items;
 *         GSI byTarget: targetKey (S)    — '<provider>#<targetId>' → the subject
 *         GSI byKind:   kind (S), pk     — paged listing of users / parties
 *         GSI byHeld:   heldKey (S), pk  — sparse: people whose destructive action the guard holds
 *  audit  pk (S) = subject, sk (S) = zero-padded seq — the per-subject hash chain
 *         GSI byDay: day (S), atSeq (S)  — query by time; TTL attribute `expiresAt`
 *  reconcile pk (S), sk (S)              — scratch of chunked reconcile runs (store/run-store.ts):
 *                                          '<runId>#<kind>#<shard>' partitions sorted by userid or
 *                                          keyed hash, one checkpoint item per run; no index; TTL
 *                                          attribute `expiresAt` (a run's items go days after it)
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export interface TableNames {
  inbox: string;
  state: string;
  audit: string;
  /** The reconcile runs' scratch table; defined only when named (older callers create three). */
  reconcile?: string;
}

export const TTL_ATTRIBUTE = 'expiresAt';

/** The inbox's sparse index of `pending` items (see functions/store/inbox.ts). */
export const INBOX_PENDING_INDEX = 'pending';
export const INBOX_PENDING_KEY = 'pendingKey';

export function tableDefinitions(names: TableNames): CreateTableCommandInput[] {
  return [
    {
      TableName: names.inbox,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: INBOX_PENDING_KEY, AttributeType: 'S' },
        { AttributeName: 'receivedAt', AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: INBOX_PENDING_INDEX,
          KeySchema: [
            { AttributeName: INBOX_PENDING_KEY, KeyType: 'HASH' },
            { AttributeName: 'receivedAt', KeyType: 'RANGE' },
          ],
          // Items are a few hundred bytes of routing facts: projecting all of them lets the
          // sweep rebuild queue messages from the index alone (no GetItem per item).
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    },
    {
      TableName: names.state,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'targetKey', AttributeType: 'S' },
        { AttributeName: 'kind', AttributeType: 'S' },
        { AttributeName: 'heldKey', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byTarget',
          KeySchema: [{ AttributeName: 'targetKey', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'ALL' },
        },
        {
          IndexName: 'byKind',
          KeySchema: [
            { AttributeName: 'kind', KeyType: 'HASH' },
            { AttributeName: 'pk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
        {
          // Sparse: only people with a held destructive action carry heldKey ('held').
          IndexName: 'byHeld',
          KeySchema: [
            { AttributeName: 'heldKey', KeyType: 'HASH' },
            { AttributeName: 'pk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    },
    {
      TableName: names.audit,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'day', AttributeType: 'S' },
        { AttributeName: 'atSeq', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byDay',
          KeySchema: [
            { AttributeName: 'day', KeyType: 'HASH' },
            { AttributeName: 'atSeq', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    },
    ...(names.reconcile
      ? [
          {
            TableName: names.reconcile,
            BillingMode: 'PAY_PER_REQUEST',
            AttributeDefinitions: [
              { AttributeName: 'pk', AttributeType: 'S' },
              { AttributeName: 'sk', AttributeType: 'S' },
            ],
            KeySchema: [
              { AttributeName: 'pk', KeyType: 'HASH' },
              { AttributeName: 'sk', KeyType: 'RANGE' },
            ],
          } satisfies CreateTableCommandInput,
        ]
      : []),
  ];
}

/**
 * Key schemas of the three tables, shared by the CDK stack (lib/), the local stack and the
 * tests, so the tables that run locally are the tables that deploy.
 *
 *  inbox  pk (S)                         — one item per received event; TTL attribute `expiresAt`
 *  state  pk (S), sk (S)                 — subject items (sk = 'state'), uniqueness claims
 *                                          (pk = 'uniq#<field>#<hash>', sk = 'claim'), meta items;
 *         GSI byTarget: targetKey (S)    — '<provider>#<targetId>' → the subject
 *         GSI byKind:   kind (S), pk     — paged listing of users / parties
 *  audit  pk (S) = subject, sk (S) = zero-padded seq — the per-subject hash chain
 *         GSI byDay: day (S), atSeq (S)  — query by time; TTL attribute `expiresAt`
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export interface TableNames {
  inbox: string;
  state: string;
  audit: string;
}

export const TTL_ATTRIBUTE = 'expiresAt';

export function tableDefinitions(names: TableNames): CreateTableCommandInput[] {
  return [
    {
      TableName: names.inbox,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    },
    {
      TableName: names.state,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'targetKey', AttributeType: 'S' },
        { AttributeName: 'kind', AttributeType: 'S' },
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
  ];
}

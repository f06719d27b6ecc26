/** SqsDeadLetters with the real SQS client against a loopback speaking SQS JSON 1.0 SendMessage. */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS } from '../../bin/local/dynalite';
import { SqsDeadLetters } from '../../functions/queue/dlq';
import type { SyncMessage } from '../../functions/queue/messages';

const received: any[] = [];
let server: ReturnType<typeof createServer>;
let endpoint = '';

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const target = req.headers['x-amz-target'];
    res.writeHead(target === 'AmazonSQS.SendMessage' ? 200 : 400, { 'content-type': 'application/x-amz-json-1.0' });
    if (target !== 'AmazonSQS.SendMessage') return void res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidAction' }));
    received.push(input);
    res.end(JSON.stringify({ MessageId: 'mid', MD5OfMessageBody: createHash('md5').update(input.MessageBody, 'utf8').digest('hex'), SequenceNumber: '1' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('SqsDeadLetters', () => {
  it('parks the message in the FIFO DLQ with group = subject, a dedupe id, and reason + failedAt attributes (redacted)', async () => {
    const client = new SQSClient({ ...LOCAL_AWS, endpoint });
    const dlq = new SqsDeadLetters(client, `${endpoint}/000000000000/dlq.fifo`, () => new Date('2026-11-24T10:00:00Z'));
    const msg: SyncMessage = { v: 1, subject: 'user:zhangsan', source: 'wecom', eventId: 'e1', operator: 'wecom-callback', receivedAt: '2026-11-24T09:59:00Z' };
    await dlq.park(msg, 'permanent: MailboxError(400): mobilePhone +8613800138000 invalid for zhang.san@example.com');
    await dlq.park(msg, 'permanent: MailboxError(400): mobilePhone +8613800138000 invalid for zhang.san@example.com');
    await dlq.parkRaw('not json', 'g1', 'malformed message');
    expect(received).toHaveLength(3);
    const [a, b, c] = received;
    expect(JSON.parse(a.MessageBody)).toEqual(msg);
    expect(a.MessageGroupId).toBe('user:zhangsan');
    expect(a.MessageDeduplicationId).toMatch(/^[0-9a-f]{64}$/);
    expect(b.MessageDeduplicationId).toBe(a.MessageDeduplicationId);
    expect(a.MessageAttributes.failedAt).toEqual({ DataType: 'String', StringValue: '2026-11-24T10:00:00.000Z' });
    const reason = a.MessageAttributes.reason.StringValue as string;
    expect(reason).toMatch(/^permanent: MailboxError\(400\)/);
    expect(reason).not.toContain('13800138000');
    expect(reason).not.toContain('zhang.san@');
    expect(c).toMatchObject({ MessageBody: 'not json', MessageGroupId: 'g1' });
    expect(c.MessageAttributes.reason.StringValue).toBe('malformed message');
  });
});

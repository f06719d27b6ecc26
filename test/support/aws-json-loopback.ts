/**
 * Tiny loopback servers speaking the AWS JSON protocols the callback uses, so tests run the
 * real SDK clients (signing, serialisation, checksum checks) against documented wire shapes:
 *  - SQS (JSON 1.0, `X-Amz-Target: AmazonSQS.SendMessageBatch` and `AmazonSQS.SendMessage`):
 *    records messages, dedupes FIFO messages on MessageDeduplicationId for 5 minutes, can be
 *    told to fail batch entries;
 *  - Secrets Manager (JSON 1.1, `X-Amz-Target: secretsmanager.GetSecretValue`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

function reply(res: ServerResponse, status: number, body: unknown, contentType: string) {
  res.writeHead(status, { 'content-type': contentType, 'x-amzn-requestid': randomUUID() });
  res.end(JSON.stringify(body));
}

export interface SqsEntryRecord {
  QueueUrl: string;
  MessageBody: string;
  MessageGroupId?: string;
  MessageDeduplicationId?: string;
}

export interface LoopbackSqs {
  endpoint: string;
  queueUrl: string;
  /** Accepted (not deduplicated) messages, in order. */
  messages: SqsEntryRecord[];
  /** Every SendMessageBatch / SendMessage request body, as received. */
  requests: any[];
  /** Fail this many upcoming batch requests' entries (all entries, as InternalError). */
  failEntries: number;
  close(): Promise<void>;
}

export async function startLoopbackSqs(): Promise<LoopbackSqs> {
  const dedupe = new Map<string, number>();
  const state = { failEntries: 0 } as LoopbackSqs;
  state.messages = [];
  state.requests = [];
  const ct = 'application/x-amz-json-1.0';
  const server = createServer(async (req, res) => {
    const target = req.headers['x-amz-target'];
    const input = await readJson(req);
    if (target === 'AmazonSQS.SendMessage') {
      // One message (the reconcile queue's continuation): a standard queue, no dedupe.
      state.requests.push(input);
      if (typeof input.MessageBody !== 'string' || !input.MessageBody) return reply(res, 400, { __type: 'com.amazonaws.sqs#MissingParameter', message: 'MessageBody' }, ct);
      state.messages.push({ QueueUrl: input.QueueUrl, MessageBody: input.MessageBody });
      return reply(res, 200, { MessageId: randomUUID(), MD5OfMessageBody: createHash('md5').update(input.MessageBody, 'utf8').digest('hex') }, ct);
    }
    if (target !== 'AmazonSQS.SendMessageBatch') {
      return reply(res, 400, { __type: 'com.amazonaws.sqs#InvalidAction', message: `unsupported ${String(target)}` }, ct);
    }
    state.requests.push(input);
    const entries: any[] = input.Entries ?? [];
    if (entries.length === 0 || entries.length > 10) {
      return reply(res, 400, { __type: 'com.amazonaws.sqs#TooManyEntriesInBatchRequest', message: 'bad batch size' }, ct);
    }
    if (state.failEntries > 0) {
      state.failEntries--;
      return reply(res, 200, { Successful: [], Failed: entries.map((e) => ({ Id: e.Id, SenderFault: false, Code: 'InternalError', Message: 'injected' })) }, ct);
    }
    const now = Date.now();
    const Successful = entries.map((e) => {
      const until = e.MessageDeduplicationId ? dedupe.get(e.MessageDeduplicationId) : undefined;
      if (!(until && until > now)) {
        if (e.MessageDeduplicationId) dedupe.set(e.MessageDeduplicationId, now + 5 * 60_000);
        state.messages.push({ QueueUrl: input.QueueUrl, MessageBody: e.MessageBody, MessageGroupId: e.MessageGroupId, MessageDeduplicationId: e.MessageDeduplicationId });
      }
      return {
        Id: e.Id,
        MessageId: randomUUID(),
        MD5OfMessageBody: createHash('md5').update(e.MessageBody, 'utf8').digest('hex'),
        SequenceNumber: String(now).padStart(20, '0'),
      };
    });
    reply(res, 200, { Successful, Failed: [] }, ct);
  });
  const endpoint = await listen(server);
  state.endpoint = endpoint;
  state.queueUrl = `${endpoint}/000000000000/wecom-mailbox-sync.fifo`;
  state.close = () => new Promise<void>((r) => server.close(() => r()));
  return state;
}

export interface LoopbackSecrets {
  endpoint: string;
  secrets: Map<string, string>;
  calls: number;
  close(): Promise<void>;
}

export async function startLoopbackSecretsManager(secrets: Record<string, string>): Promise<LoopbackSecrets> {
  const state = { secrets: new Map(Object.entries(secrets)), calls: 0 } as LoopbackSecrets;
  const ct = 'application/x-amz-json-1.1';
  const server = createServer(async (req, res) => {
    const input = await readJson(req);
    if (req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') {
      return reply(res, 400, { __type: 'InvalidRequestException', Message: 'unsupported' }, ct);
    }
    state.calls++;
    const value = state.secrets.get(input.SecretId);
    if (value === undefined) return reply(res, 400, { __type: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." }, ct);
    reply(res, 200, { ARN: input.SecretId, Name: input.SecretId.split(':').pop(), SecretString: value, VersionId: randomUUID(), VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 }, ct);
  });
  state.endpoint = await listen(server);
  state.close = () => new Promise<void>((r) => server.close(() => r()));
  return state;
}

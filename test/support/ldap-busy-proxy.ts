/**
 * An LDAP-aware TCP proxy in front of a real slapd that refuses a share of requests the way a
 * loaded directory server does: it answers them itself with `busy` (51) or `unavailable` (52)
 * and never forwards them, so nothing of a refused request is applied. The conformance suite's
 * throttling storm (`probe.storm`) runs the LDAP adapter through it.
 *
 * It frames both directions by BER (RFC 4511 §4.1.1: LDAPMessage ::= SEQUENCE { messageID,
 * protocolOp, controls }) so its own answers go between whole server messages, never inside
 * one. Plaintext only (it reads the protocol).
 */
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

/** Request protocolOp tag → the tag of its final response (bind, search → searchResDone, modify, add, del, modDN, compare, extended). */
const RESPONSE: Readonly<Record<number, number>> = { 0x60: 0x61, 0x63: 0x65, 0x66: 0x67, 0x68: 0x69, 0x4a: 0x6b, 0x6c: 0x6d, 0x6e: 0x6f, 0x77: 0x78 };

/** The length of the whole TLV at `offset`, or undefined when `buf` does not hold all of it yet. */
function tlvLength(buf: Buffer, offset: number): number | undefined {
  if (buf.length < offset + 2) return undefined;
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (buf.length < offset + 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    header += n;
  }
  return buf.length >= offset + header + len ? header + len : undefined;
}

/** Splits a stream into whole LDAPMessages. */
function framer(onMessage: (msg: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      const n = tlvLength(pending, 0);
      if (n === undefined) return;
      onMessage(pending.subarray(0, n));
      pending = pending.subarray(n);
    }
  };
}

/** The messageID TLV and the protocolOp tag of a request. */
function parts(msg: Buffer): { idTlv: Buffer; opTag: number } | undefined {
  const header = msg[1]! & 0x80 ? 2 + (msg[1]! & 0x7f) : 2;
  const idLen = tlvLength(msg, header);
  if (msg[header] !== 0x02 || idLen === undefined) return undefined;
  return { idTlv: msg.subarray(header, header + idLen), opTag: msg[header + idLen]! };
}

function refusal(idTlv: Buffer, responseTag: number, resultCode: number): Buffer {
  const result = Buffer.from([0x0a, 0x01, resultCode, 0x04, 0x00, 0x04, 0x00]);
  const op = Buffer.concat([Buffer.from([responseTag, result.length]), result]);
  const body = Buffer.concat([idTlv, op]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

export interface BusyProxy {
  url: string;
  /** From now on this share of requests is refused (0 stops). */
  setRate(rate: number): void;
  /** Requests refused so far. */
  refused(): number;
  close(): Promise<void>;
}

export async function startBusyProxy(target: { host: string; port: number }, random: () => number = Math.random): Promise<BusyProxy> {
  let rate = 0;
  let refused = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.connect(target.port, target.host);
    client.on(
      'data',
      framer((msg) => {
        const p = parts(msg);
        const responseTag = p ? RESPONSE[p.opTag] : undefined;
        if (p && responseTag !== undefined && rate > 0 && random() < rate) {
          refused++;
          client.write(refusal(p.idTlv, responseTag, random() < 0.5 ? 51 : 52));
          return;
        }
        upstream.write(msg);
      }),
    );
    upstream.on('data', framer((msg) => client.write(msg)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ldap://127.0.0.1:${port}`,
    setRate: (r) => (rate = r),
    refused: () => refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

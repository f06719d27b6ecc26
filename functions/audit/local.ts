/**
 * Local adapters of the digest ports (the local stack and the CLI against it):
 *
 *   <dataDir>/audit-digest-key.pem       ECDSA P-256 private key (PKCS#8), 0600, created once
 *   <dataDir>/audit-digest-key.pub.pem   its public key (SPKI), what verification reads
 *   <dataDir>/audit-digests/<ISO-time>.json  one file per digest, 0600, in a 0700 directory
 *
 * Files are created with the 'wx' flag: a digest is never overwritten, and two processes
 * starting together cannot both create a key. Like the local master key, this is not a
 * security boundary (whoever can write .data/ can replace the key): it gives the local stack
 * the same behaviour as the deployed one, whose boundary is KMS and S3 Object Lock.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AUDIT_RETENTION_DAYS } from '../store/audit';
import type { AuditChainKey } from '../security/audit-chain-key';
import type { DigestJobDeps } from './run';
import type { AuditVerifyDeps } from './verify';
import { DigestExistsError, type AuditReader, type DigestSignature, type DigestSigner, type DigestStore, type StoredDigest } from './ports';

export const LOCAL_DIGEST_DIR = 'audit-digests';
export const LOCAL_SIGNING_KEY_FILE = 'audit-digest-key.pem';
export const LOCAL_VERIFY_KEY_FILE = 'audit-digest-key.pub.pem';

/** A digest's file name: its ISO-8601 UTC creation time (fixed width, so names sort by time). */
const NAME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\.json$/;

export function localDigestPaths(dataDir: string) {
  return {
    dir: join(dataDir, LOCAL_DIGEST_DIR),
    signingKey: join(dataDir, LOCAL_SIGNING_KEY_FILE),
    verifyKey: join(dataDir, LOCAL_VERIFY_KEY_FILE),
  };
}

async function writeNew(path: string, data: string, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const isErrno = (err: unknown, code: string) => (err as NodeJS.ErrnoException)?.code === code;

export class LocalDigestStore implements DigestStore {
  constructor(private readonly dir: string) {}

  async latest(): Promise<StoredDigest | undefined> {
    const name = (await this.names()).at(-1);
    return name ? this.read(name) : undefined;
  }

  async atOrBefore(time: Date): Promise<StoredDigest | undefined> {
    const bound = `${time.toISOString()}.json`;
    const name = (await this.names()).filter((n) => n <= bound).at(-1);
    return name ? this.read(name) : undefined;
  }

  async put(name: string, body: string): Promise<void> {
    if (!NAME.test(name)) throw new Error(`not a digest name: ${name}`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      await writeNew(join(this.dir, name), body, 0o600);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new DigestExistsError(name);
      throw err;
    }
  }

  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => NAME.test(n)).sort();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }

  private async read(name: string): Promise<StoredDigest> {
    return { name, body: await readFile(join(this.dir, name), 'utf8') };
  }
}

export class LocalDigestSigner implements DigestSigner {
  private keys?: Promise<{ privateKey: KeyObject; publicKey: KeyObject }>;

  constructor(
    private readonly signingKeyFile: string,
    private readonly verifyKeyFile: string,
  ) {}

  async sign(message: Uint8Array): Promise<DigestSignature> {
    const { privateKey, publicKey } = await this.keyPair();
    return { alg: 'ECDSA_SHA_256', keyId: keyIdOf(publicKey), signature: sign('sha256', message, privateKey).toString('base64') };
  }

  async verify(message: Uint8Array, signature: DigestSignature): Promise<boolean> {
    const key = await this.verifyKey();
    if (!key) return false; // no key: nothing can verify
    try {
      return verify('sha256', message, key, Buffer.from(signature.signature, 'base64'));
    } catch {
      return false;
    }
  }

  /** The public key: its own file, else derived from the private key; undefined when neither exists. */
  private async verifyKey(): Promise<KeyObject | undefined> {
    try {
      return createPublicKey(await readFile(this.verifyKeyFile, 'utf8'));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    try {
      return createPublicKey(createPrivateKey(await readFile(this.signingKeyFile, 'utf8')));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  private keyPair() {
    this.keys ??= this.loadOrCreate().catch((err: unknown) => {
      this.keys = undefined;
      throw err;
    });
    return this.keys;
  }

  private async loadOrCreate(): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
    await mkdir(dirname(this.signingKeyFile), { recursive: true, mode: 0o700 });
    const fresh = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    try {
      await writeNew(this.signingKeyFile, fresh.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const info = await stat(this.signingKeyFile);
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      throw new Error(`local audit digest key ${this.signingKeyFile} is readable by group/others; chmod 600 it`);
    }
    let pem = await readFile(this.signingKeyFile, 'utf8');
    // Another process may have created the file a moment ago and not written it yet.
    for (let i = 0; !pem && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      pem = await readFile(this.signingKeyFile, 'utf8');
    }
    const privateKey = createPrivateKey(pem);
    const publicKey = createPublicKey(privateKey);
    try {
      await writeNew(this.verifyKeyFile, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    return { privateKey, publicKey };
  }
}

/** A short, stable name of a public key (not secret): 'local:' + 16 hex of SHA-256(SPKI). */
function keyIdOf(publicKey: KeyObject): string {
  return `local:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)}`;
}

export interface LocalAuditDigestOptions {
  /** The local stack's data directory (.data). */
  dataDir: string;
  /** The audit log's raw reads (DynamoAuditLog). */
  audit: AuditReader;
  /** The chain key the local stack appends with. */
  chain: AuditChainKey;
  retentionDays?: number;
  /** Period of the local digest timer (default 3600). */
  intervalSeconds?: number;
  now?: () => Date;
}

/** Everything runAuditDigest needs, on the local files. */
export function localDigestJobDeps(o: LocalAuditDigestOptions): DigestJobDeps {
  const paths = localDigestPaths(o.dataDir);
  return {
    audit: o.audit,
    chain: o.chain,
    store: new LocalDigestStore(paths.dir),
    signer: new LocalDigestSigner(paths.signingKey, paths.verifyKey),
    retentionDays: o.retentionDays ?? AUDIT_RETENTION_DAYS,
    intervalSeconds: o.intervalSeconds ?? 3600,
    ...(o.now ? { now: o.now } : {}),
  };
}

/** Everything verifyAudit needs, on the local files. */
export function localVerifyDeps(o: Omit<LocalAuditDigestOptions, 'intervalSeconds'>): AuditVerifyDeps {
  const paths = localDigestPaths(o.dataDir);
  return {
    audit: o.audit,
    chain: o.chain,
    store: new LocalDigestStore(paths.dir),
    verifier: new LocalDigestSigner(paths.signingKey, paths.verifyKey),
    retentionDays: o.retentionDays ?? AUDIT_RETENTION_DAYS,
    ...(o.now ? { now: o.now } : {}),
  };
}

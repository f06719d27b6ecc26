/**
 * Secrets: in AWS from Secrets Manager (one GetSecretValue per secret per container, at
 * first use), locally from env vars. The Secrets Manager client is imported and built only
 * when an ARN is configured, so local runs and tests never load it and cold start pays for
 * it only once. `SECRETS_ENDPOINT` points the client at a loopback server in tests.
 *
 * Error messages name the missing setting, never a value.
 */

const cache = new Map<string, Promise<unknown>>();
let clientPromise: Promise<{ send: (arn: string) => Promise<string | undefined> }> | undefined;

function secretsClient() {
  clientPromise ??= import('@aws-sdk/client-secrets-manager').then(({ SecretsManagerClient, GetSecretValueCommand }) => {
    const client = new SecretsManagerClient(process.env.SECRETS_ENDPOINT ? { endpoint: process.env.SECRETS_ENDPOINT } : {});
    return {
      send: async (arn: string) => (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString,
    };
  });
  return clientPromise;
}

async function fetchSecretJson(arnEnvName: string, arn: string): Promise<unknown> {
  const client = await secretsClient();
  const raw = await client.send(arn);
  if (!raw) throw new Error(`secret ${arnEnvName} has no SecretString`);
  try {
    return JSON.parse(raw);
  } catch {
    throw new Error(`secret ${arnEnvName} is not valid JSON`);
  }
}

/**
 * The JSON secret named by `process.env[arnEnvName]`, fetched once per container; without
 * that env var, `localFallback()` (built from env vars). A failed fetch is not cached, so
 * the next invocation tries again.
 */
export function loadSecretJson<T>(arnEnvName: string, localFallback: () => T | Promise<T>): Promise<T> {
  const arn = process.env[arnEnvName];
  const key = `${arnEnvName}=${arn ?? ''}`;
  let p = cache.get(key) as Promise<T> | undefined;
  if (!p) {
    p = arn ? (fetchSecretJson(arnEnvName, arn) as Promise<T>) : Promise.resolve().then(localFallback);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

/** One env var the function cannot run without, or an error naming it (never a value). */
export function requireSetting(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`missing configuration: ${name}`);
  return v;
}

/** Named env vars, or an error naming the missing ones (never a value). */
export function requireEnv(names: string[]): Record<string, string> {
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length) throw new Error(`missing configuration: set ${missing.join(', ')} (or the secret ARN)`);
  return Object.fromEntries(names.map((n) => [n, process.env[n]!]));
}

/** For tests: forget cached secrets (and the client, so a new SECRETS_ENDPOINT is used). */
export function clearSecretCache(): void {
  cache.clear();
  clientPromise = undefined;
}

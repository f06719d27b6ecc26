/**
 * The local stack as the end-to-end tests start it: a free port, DynamoDB in memory, nothing
 * printed, PATH the only inherited env var, and the grace deleter and mailbox-feed upkeep off
 * (a test runs them itself when it means to). Everything else, and any of these, by `over`.
 */
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../bin/local/stack';

export function startTestStack(dataDir: string, over: LocalStackOptions = {}): Promise<LocalStack> {
  return startLocalStack({
    port: 0,
    persist: false,
    print: () => undefined,
    graceIntervalMs: 0,
    subscriptionIntervalMs: 0,
    ...over,
    dataDir,
    env: { PATH: process.env.PATH, ...over.env },
  });
}

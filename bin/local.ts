/**
 * `npm start`: the local stack (see bin/local/stack.ts). Reads .env if present, starts
 * everything on PORT (default 3000), prints how to use it, and stops cleanly on Ctrl-C.
 */
import { describeMailbox, LocalConfigError, startLocalStack, withDotEnv } from './local/stack';

const env = withDotEnv(process.env);
let stack: Awaited<ReturnType<typeof startLocalStack>>;
try {
  stack = await startLocalStack({ env });
} catch (err) {
  if (!(err instanceof LocalConfigError)) throw err;
  // A half-configured side is an error that names what is missing, never a silent fallback.
  console.error(`wecom-mailbox-sync: configuration problem (.env or environment):\n${err.message}`);
  process.exit(78);
}
const c = stack.credentials;
const b = stack.baseUrl;
/** A secret is shown only when the stack generated it itself (a demo value); the operator's own never. */
const shown = (key: keyof typeof c) => (stack.fromEnv.includes(key) ? '(from your environment: not shown)' : `${c[key]}   (demo value)`);
const wecomMode = {
  simulated: `simulated at ${b}/_sim/wecom`,
  'callback-only': 'callback only — REAL callback keys from the environment, contacts API simulated',
  real: 'REAL (credentials from the environment)',
}[stack.modes.wecom];
// The mailbox side's demo: Graph's through the CLI, Google's and Exmail's through their simulated admin console.
const graphDemo = stack.mailbox.provider === 'graph' && stack.mailbox.mode === 'simulated';
const consoleDemo = stack.mailbox.mode === 'simulated' && stack.mailbox.provider !== 'graph' ? `${stack.mailbox.simUrl}/_console/users/zhangsan@${stack.config.mailDomain}` : undefined;

const lines = [
  '',
  `wecom-mailbox-sync local stack on ${b}`,
  `  data:            ${stack.dataDir} (DynamoDB, queue, local master key; owner-only; personal data only as ciphertext)`,
  `  WeCom:           ${wecomMode}`,
  `  ${describeMailbox(stack)}   (SYNC_CONFIG provider)`,
  '',
  'WeCom callback (what you enter in the WeCom admin console, 管理后台 → 通讯录同步 → 设置接收事件服务器):',
  `  URL:            ${stack.callbackUrl}   (must be reachable from the internet: a tunnel to this port)`,
  `  Token:          ${shown('token')}`,
  `  EncodingAESKey: ${shown('encodingAESKey')}`,
  `  CorpID:         ${c.corpId}`,
  stack.modes.wecom === 'simulated'
    ? '  For a real app set WECOM_CORP_ID, WECOM_TOKEN, WECOM_ENCODING_AES_KEY (callback only), plus\n' +
      '  WECOM_CONTACTS_SECRET and WECOM_APP_SECRET (the real contacts API), in .env.'
    : '',
  '  The simulators, /_local/* and /console answer callers on this machine only (never through a tunnel or proxy).',
  '',
  `Operator console (一次性登录链接 / one-time sign-in link): ${stack.consoleLoginUrl()}`,
  '',
  stack.simulated.wecom ? 'Try it (simulated WeCom → real encrypted callback → queue → worker → mailbox):' : '',
  stack.simulated.wecom ? `  curl -s -XPOST ${b}/_sim/wecom/users -H 'content-type: application/json' \\` : '',
  stack.simulated.wecom ? `       -d '{"userid":"zhangsan","name":"张三","mobile":"138 0013 8000","department":[1]}'` : '',
  graphDemo ? `  curl -s "${b}/_sim/graph/v1.0/users?\\$filter=employeeId%20eq%20'zhangsan'" -H "authorization: Bearer $(npm run -s cli -- local-token)"` : '',
  consoleDemo ? `  curl -s ${consoleDemo}` : '',
  `  npm run cli -- audit --subject user:zhangsan`,
  graphDemo || consoleDemo ? 'Offboard (mailbox disabled → WeCom member disabled):' : '',
  graphDemo ? `  npm run cli -- demo-offboard zhangsan     # PATCHes accountEnabled=false in the simulated Graph` : '',
  consoleDemo ? `  curl -s -XPOST ${consoleDemo} -H 'content-type: application/json' -d '{"enabled":false}'` : '',
  consoleDemo && stack.mailbox.provider === 'exmail' ? '  # Exmail pushes nothing: its operation log is polled every minute' : '',
  stack.simulated.wecom ? `  curl -s ${b}/_sim/wecom/users/zhangsan    # "enable": 0` : '',
  '',
  'Ctrl-C stops the stack; data stays in .data/ (delete it to start afresh). kill -9 loses nothing.',
];
console.log(lines.filter((l) => l !== '').join('\n').replace(/\n(?=[A-Z])/g, '\n\n'));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping…');
  await stack.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

/**
 * `npm start`: the local stack (see bin/local/stack.ts). Reads .env if present, starts
 * everything on PORT (default 3000), prints how to use it, and stops cleanly on Ctrl-C.
 */
import { startLocalStack, withDotEnv } from './local/stack';

const env = withDotEnv(process.env);
const stack = await startLocalStack({ env });
const c = stack.credentials;
const b = stack.baseUrl;

const lines = [
  '',
  `wecom-mailbox-sync local stack on ${b}`,
  `  data:            ${stack.dataDir} (DynamoDB, local master key; personal data only as ciphertext)`,
  `  WeCom:           ${stack.simulated.wecom ? `simulated at ${b}/_sim/wecom` : 'REAL (credentials from the environment)'}`,
  `  mailbox (Graph): ${stack.simulated.graph ? `simulated at ${b}/_sim/graph` : 'REAL (credentials from the environment)'}`,
  '',
  'WeCom callback (what you enter in the WeCom admin console, 管理后台 → 通讯录同步 → 设置接收事件服务器):',
  `  URL:            ${stack.callbackUrl}   (must be reachable from the internet: use a tunnel, HOST=0.0.0.0)`,
  `  Token:          ${c.token}`,
  `  EncodingAESKey: ${c.encodingAESKey}`,
  `  CorpID:         ${c.corpId}`,
  stack.simulated.wecom
    ? '  These are DEMO values, generated once and kept in .data/demo-credentials.json. For a real app, set\n' +
      '  WECOM_CORP_ID, WECOM_TOKEN, WECOM_ENCODING_AES_KEY, WECOM_CONTACTS_SECRET, WECOM_APP_SECRET in .env.'
    : '',
  '',
  'Try it (simulated WeCom → real encrypted callback → queue → worker → simulated mailbox):',
  `  curl -s -XPOST ${b}/_sim/wecom/users -H 'content-type: application/json' \\`,
  `       -d '{"userid":"zhangsan","name":"张三","mobile":"138 0013 8000","department":[1]}'`,
  `  curl -s "${b}/_sim/graph/v1.0/users?\\$filter=employeeId%20eq%20'zhangsan'" -H "authorization: Bearer $(npm run -s cli -- local-token)"`,
  `  npm run cli -- audit --subject user:zhangsan`,
  'Offboard (mailbox disabled → WeCom member disabled):',
  `  npm run cli -- demo-offboard zhangsan     # PATCHes accountEnabled=false in the simulated Graph`,
  `  curl -s ${b}/_sim/wecom/users/zhangsan    # "enable": 0`,
  '',
  'Ctrl-C stops the stack; data stays in .data/ (delete it to start afresh).',
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

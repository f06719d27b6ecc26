/**
 * A child process for the kill -9 test (test/unit/sim-persistence.test.ts): starts a simulator
 * on a persist directory and creates members over HTTP, one after another, printing each id
 * once its create is ACKNOWLEDGED, until the parent kills it.
 *
 *   node --import tsx test/support/sim-writer.ts <wecom|graph> <persistDir>
 *
 * stdout to a pipe is synchronous on Linux: a printed id is in the pipe before the next request.
 */
import { createGraphSim } from '../../bin/local/sim/graph';
import { createWecomSim } from '../../bin/local/sim/wecom';

const [kind, persistDir] = process.argv.slice(2);
if ((kind !== 'wecom' && kind !== 'graph') || !persistDir) {
  process.stderr.write('usage: sim-writer.ts <wecom|graph> <persistDir>\n');
  process.exit(2);
}
const json = { 'content-type': 'application/json' };
const MAX = 100_000; // a bound, should the parent never kill us

if (kind === 'wecom') {
  const sim = createWecomSim({ corpId: 'wwkill', contactsSecret: 'c', appSecret: 'a', persistDir });
  const { baseUrl } = await sim.start();
  for (let i = 0; i < MAX; i++) {
    const userid = `k${i}`;
    const res = await fetch(`${baseUrl}/users`, { method: 'POST', headers: json, body: JSON.stringify({ userid, name: `K ${i}`, mobile: '+8613800138000' }) });
    if (res.status !== 201) throw new Error(`create answered ${res.status}`);
    process.stdout.write(`${userid}\n`);
  }
} else {
  const sim = createGraphSim({ persistDir });
  const { baseUrl } = await sim.start();
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: 'client-1', client_secret: 'secret-1', scope: 'https://graph.microsoft.com/.default' });
  const token = ((await (await fetch(`${baseUrl}/tenant-1/oauth2/v2.0/token`, { method: 'POST', body: form })).json()) as { access_token: string }).access_token;
  for (let i = 0; i < MAX; i++) {
    const res = await fetch(`${baseUrl}/v1.0/users`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${token}` },
      body: JSON.stringify({
        accountEnabled: true,
        displayName: `K ${i}`,
        mailNickname: `k${i}`,
        userPrincipalName: `k${i}@example.com`,
        employeeId: `k${i}`,
        passwordProfile: { password: 'Aa1!aaaaaaaa' },
      }),
    });
    if (res.status !== 201) throw new Error(`create answered ${res.status}`);
    process.stdout.write(`${((await res.json()) as { id: string }).id}\n`);
  }
}

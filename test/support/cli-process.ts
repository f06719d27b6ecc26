/** The operator CLI as a separate process (`node --import tsx bin/wecom-sync.ts …`), as an operator runs it. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const CLI = resolve(import.meta.dirname, '../../bin/wecom-sync.ts');
const TSX = import.meta.resolve('tsx');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(cwd: string, args: string[], operator = 'e2e'): Promise<CliRun> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
      cwd,
      // English CLI output whatever the developer's LANG (the Chinese catalogue has its own tests).
      env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: '', LC_MESSAGES: '', VITEST: '', LOG_LEVEL: 'ERROR', WECOM_SYNC_OPERATOR: operator },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => ok({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * CPU per process while a benchmark runs, so a figure names its bottleneck: this process
 * (product code + in-process simulators), the dynalite child (from /proc), the rest of the
 * machine. Linux /proc only; elsewhere the child and machine figures read 0 / NaN.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The dynalite child (startDynalite does not expose its pid): our child whose command line names dynalite. */
export function dynaliteChildPid(): number | undefined {
  try {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
        if (ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dynalite')) return Number(pid);
      } catch {
        // the process ended while we looked
      }
    }
  } catch {
    // no /proc (not Linux)
  }
  return undefined;
}

/** CPU seconds (user + system) of a process, from /proc/<pid>/stat fields 14 and 15. */
export function procCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat; NaN without /proc. */
function machineBusySeconds(): number {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
    const idle = ticks[3]! + ticks[4]!; // idle + iowait
    return (ticks.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** CPU used per process while draining, as a share of one core; `others` = the rest of the machine. */
export function cpuMeter(childPid: number | undefined) {
  const t0 = performance.now();
  const self0 = process.cpuUsage();
  const child0 = childPid ? procCpuSeconds(childPid) : 0;
  const machine0 = machineBusySeconds();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    const selfSec = (self.user + self.system) / 1e6;
    const childSec = childPid ? procCpuSeconds(childPid) - child0 : 0;
    const othersSec = machineBusySeconds() - machine0 - selfSec - childSec;
    return { self: selfSec / wall, child: childSec / wall, others: Math.max(0, othersSec) / wall };
  };
}

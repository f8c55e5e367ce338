/** Helpers shared by the benchmark stages: timing, quantiles, the machine, a child's memory. */
import { readFile } from 'node:fs/promises';
import os from 'node:os';

/** Value at quantile `q` (0..1) of an ascending array: the nearest rank at or below. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Best (shortest) of `rounds` runs of `pass`, in ms. On a shared machine the fastest pass is the
 * least disturbed one, so it is the most repeatable estimate of what the code costs.
 */
export function bestOf(rounds: number, pass: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    pass();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

/** Items per second for `count` items in `ms`, rounded. */
export function perSecond(count: number, ms: number): number {
  return Math.round(count / (ms / 1000));
}

/** What the numbers were measured on. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemoryMb: number;
  node: string;
  platform: string;
  date: string;
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
    loadAverage: os.loadavg().map((load) => Number(load.toFixed(2))),
  };
}

/** Resident set size of a process in MiB, from /proc/PID/status (Linux); NaN when unreadable. */
export async function rssMb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** `1234567` as `1,234,567`. */
export function thousands(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

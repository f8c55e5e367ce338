/** Helpers shared by the benchmark stages: timing, quantiles, the machine, a child's memory. */
import { lstat, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';

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

/**
 * Where a CLI process's memory is, in MiB: RSS split into anonymous and file-backed pages
 * (/proc/PID/status), and the V8 heap (used and reserved) and external memory its `/metrics`
 * reports. Anonymous minus the reserved heap is native memory: DuckDB's buffer pool and threads,
 * the allocator's arenas, V8's code and the addon's own allocations.
 */
export interface MemoryBreakdown {
  rssMb: number;
  anonMb: number;
  fileMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  /** anonMb - heapTotalMb. */
  nativeMb: number;
}

export async function memoryBreakdown(pid: number, baseUrl: string): Promise<MemoryBreakdown> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kbAsMb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  const metrics = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(30_000) })
    .then((response) => response.text())
    .catch(() => '');
  const metricMb = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) / 2 ** 20;
  const anonMb = kbAsMb('RssAnon');
  const heapTotalMb = metricMb('nodejs_heap_size_total_bytes');
  const one = (value: number) => Math.round(value * 10) / 10;
  return {
    rssMb: one(kbAsMb('VmRSS')),
    anonMb: one(anonMb),
    fileMb: one(kbAsMb('RssFile')),
    heapUsedMb: one(metricMb('nodejs_heap_size_used_bytes')),
    heapTotalMb: one(heapTotalMb),
    externalMb: one(metricMb('nodejs_external_memory_bytes')),
    nativeMb: one(anonMb - heapTotalMb),
  };
}

/** Bytes under `dir`, skipping `skip` (the lake); files vanishing meanwhile (retention) count 0. */
export async function duBytes(dir: string, skip: readonly string[] = []): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    if (skip.includes(name)) continue;
    const full = join(dir, name);
    try {
      const info = await lstat(full);
      total += info.isDirectory() ? await duBytes(full) : info.blocks * 512;
    } catch {
      // Deleted between readdir and lstat.
    }
  }
  return total;
}

/**
 * The counters of Redis's `INFO stats` (`total_connections_received`, `total_net_input_bytes`...),
 * read over a connection of its own, which the connection counter includes.
 */
export async function redisStats(url: string): Promise<Record<string, number>> {
  const client = createClient({ url });
  await client.connect();
  try {
    const stats: Record<string, number> = {};
    for (const [, name, value] of (await client.info('stats')).matchAll(/^(\w+):(\d+)\r?$/gm)) {
      stats[name!] = Number(value);
    }
    return stats;
  } finally {
    await client.close();
  }
}

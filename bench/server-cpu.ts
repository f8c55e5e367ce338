/**
 * CPU time of a server the benchmarks talk to, found by the loopback port it listens on, so a
 * PostgreSQL cluster that detached from the bench (pg_ctl) or a broker started outside it
 * (`STREAMLINES_TEST_KAFKA_BROKERS`) is counted too. Linux only (/proc); elsewhere nothing is found.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Linux's USER_HZ: /proc/PID/stat counts CPU time in these. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The process holding a TCP socket that listens on `port` (IPv4 or IPv6), or undefined. */
export async function listenerPid(port: number): Promise<number | undefined> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN; field 9 is the socket's inode.
      if (fields[3] === '0A' && Number.parseInt(fields[1]?.split(':')[1] ?? '', 16) === port) {
        inodes.add(fields[9]!);
      }
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return Number(entry);
    }
  }
  return undefined;
}

/** One process as /proc/PID/stat shows it; CPU in seconds. */
export interface ProcessStat {
  ppid: number;
  name: string;
  /** utime + stime. */
  cpuS: number;
  /** cutime + cstime: what its exited (and reaped) children used. */
  childrenCpuS: number;
}

/** Every process on the machine now, by pid. */
export async function processStats(): Promise<Map<number, ProcessStat>> {
  const stats = new Map<number, ProcessStat>();
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    // The command name may hold spaces and parentheses: the fields start after the LAST ')'.
    const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    stats.set(Number(entry), {
      ppid: Number(fields[1]),
      name,
      cpuS: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND,
      childrenCpuS: (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND,
    });
  }
  return stats;
}

/** `root` and every live descendant of it. */
export function processTree(stats: ReadonlyMap<number, ProcessStat>, root: number): Set<number> {
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, stat] of stats) {
      if (!tree.has(pid) && tree.has(stat.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

/**
 * CPU seconds used so far by `pid` and every live descendant, plus what their exited children used
 * (a PostgreSQL backend that ended is counted in the postmaster's cutime).
 */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const stats = await processStats();
  let seconds = 0;
  for (const member of processTree(stats, pid)) {
    const stat = stats.get(member);
    if (stat !== undefined) seconds += stat.cpuS + stat.childrenCpuS;
  }
  return seconds;
}

/** The port of a `host:port` broker or a `postgres://…:port/…` / `redis://…:port` URL. */
export function portOf(address: string): number {
  const url = /^[a-z]+:\/\//.test(address) ? new URL(address) : new URL(`tcp://${address}`);
  return Number(url.port);
}

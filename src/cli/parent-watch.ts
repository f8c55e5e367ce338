/**
 * `npx streamlines …` and `npm start` run the server as a grandchild of npm (npm → sh → node). A
 * `kill -9` of npm leaves that grandchild running, holding the data dir's lock and the port, so the
 * same command run again would find the data dir in use. When npm launched us, we watch it and exit
 * as soon as it is gone, as if we had been killed with it (everything committed is safe: the
 * pipeline is crash-consistent).
 */
import { readFileSync } from 'node:fs';

/** The pid of the npm process that launched this one, or undefined when npm did not. */
export function npmAncestorPid(): number | undefined {
  if (process.env.npm_command === undefined && process.env.npm_lifecycle_event === undefined)
    return undefined;
  let pid = process.ppid;
  // npm → (sh -c) → node: look a few generations up for the npm process itself.
  for (let depth = 0; depth < 4 && pid > 1; depth++) {
    const cmdline = readProc(pid, 'cmdline').replaceAll('\0', ' ');
    if (/(^|[\s/])(npm|npx)(-cli\.js)?(\s|$)|npm-cli\.js|npm exec|npm run|npm start/.test(cmdline))
      return pid;
    pid = parentOf(pid) ?? 0;
  }
  return undefined;
}

/** Calls `onGone` once when process `pid` no longer runs (or is a zombie); checks every `intervalMs`. */
export function watchProcess(pid: number, onGone: () => void, intervalMs = 200): () => void {
  const timer = setInterval(() => {
    if (!isRunning(pid)) {
      clearInterval(timer);
      onGone();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function isRunning(pid: number): boolean {
  const stat = readProc(pid, 'stat');
  if (stat === '') return false;
  // The state is the field after the command name in parentheses; Z is a zombie (dead, not reaped).
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

function parentOf(pid: number): number | undefined {
  const stat = readProc(pid, 'stat');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const parent = Number(fields[1]);
  return Number.isInteger(parent) ? parent : undefined;
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

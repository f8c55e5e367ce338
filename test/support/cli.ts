/** Drives the real `streamlines` CLI in a child process, for end-to-end tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitForValue } from './wait.ts';

const ROOT = join(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'bin/streamlines.js');
/**
 * The V8 flags `npx streamlines` starts node with: the ones on the first line of bin/streamlines.js.
 * Tests and benchmarks start the CLI with them too, so they measure it as users run it.
 */
export const CLI_NODE_FLAGS: string[] = readFileSync(CLI, 'utf8')
  .split('\n', 1)[0]!
  .replace(/^#!\/usr\/bin\/env -S node\s*/, '')
  .split(' ')
  .filter(Boolean);

export interface RunningCli {
  child: ChildProcess;
  baseUrl: string;
  stderr: () => string;
}

/** The arguments of a replay of `replay` at full speed into `dataDir`, with `config` when given. */
export function replayArgs(replay: string, dataDir: string, config?: string): string[] {
  return [
    '--replay',
    replay,
    '--speed',
    'max',
    '--data-dir',
    dataDir,
    ...(config ? ['--config', config] : []),
  ];
}

/** Starts `streamlines run ARGS --port 0` and resolves once it prints where it listens. */
export function startCli(args: string[], timeoutMs = 30_000): Promise<RunningCli> {
  return startServing(
    'CLI',
    process.execPath,
    [...CLI_NODE_FLAGS, CLI, 'run', '--port', '0', '--host', '127.0.0.1', ...args],
    timeoutMs,
  );
}

/**
 * Spawns `command` in the repository root and resolves once it prints `listening on URL`; `name`
 * (with its stderr) is in the error when it exits or times out first.
 */
export async function startServing(
  name: string,
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<RunningCli> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening: ${stderr}`));
    });
  });
  return { child, baseUrl, stderr: () => stderr };
}

/** Runs the CLI to completion (for commands that exit) and returns its exit code and output. */
export function runCliOnce(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit(process.execPath, [CLI, ...args]);
}

/** Runs `command` in the repository root to its exit; its exit code and output. */
export async function runToExit(
  command: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Runs the CLI with `args` until it drained and returns what the API answers then: a run's expected result. */
export async function drainedDump(args: string[]): Promise<Record<string, unknown>> {
  const cli = await startCli(args);
  try {
    await waitDrained(cli.baseUrl);
    return await dumpApi(cli.baseUrl);
  } finally {
    await stopCli(cli);
  }
}

/**
 * Kills the CLI with SIGKILL after `delayMs`, and says where it was then (for the failure message of a
 * crash test); `drained` tells whether the run had already ended.
 */
export async function killAfter(
  cli: RunningCli,
  delayMs: number,
): Promise<{ drained: boolean; said: string }> {
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  const { body } = await getJson<{ processedOffset: number; drained: boolean }>(
    cli.baseUrl,
    '/api/v1/stats',
  ).catch(() => ({ body: { processedOffset: -1, drained: false } }));
  await stopCli(cli, 'SIGKILL');
  return {
    drained: body.drained,
    said: `after ${delayMs} ms at offset ${body.processedOffset}${body.drained ? ' (drained)' : ''}`,
  };
}

export async function stopCli(cli: RunningCli, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (cli.child.exitCode !== null || cli.child.signalCode !== null) return;
  const exited = once(cli.child, 'exit');
  cli.child.kill(signal);
  await exited;
}

export async function getJson<T = unknown>(
  baseUrl: string,
  path: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(30_000) });
  return { status: response.status, body: (await response.json()) as T };
}

/** Polls `/api/v1/stats` until `drained` is true. */
export function waitDrained(baseUrl: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  return waitForStats(baseUrl, (stats) => stats.drained === true, { timeoutMs });
}

/** Everything the REST API says about a replay, for comparing two runs. */
export async function dumpApi(baseUrl: string): Promise<Record<string, unknown>> {
  const { body: symbolsBody } = await getJson<{ symbols: { symbol: string }[] }>(baseUrl, '/api/v1/symbols');
  const { body: stats } = await getJson<Record<string, unknown>>(baseUrl, '/api/v1/stats');
  const counters = Object.fromEntries(
    [
      'received',
      'accepted',
      'rejected',
      'duplicates',
      'late',
      'rejectedByReason',
      'candlesClosed',
      'alertsFired',
      'drained',
    ].map((key) => [key, stats[key]]),
  );
  const dump: Record<string, unknown> = { symbols: symbolsBody.symbols, counters };
  for (const { symbol } of symbolsBody.symbols) {
    const perSymbol: Record<string, unknown> = {};
    perSymbol.latest = (await getJson(baseUrl, `/api/v1/latest/${symbol}`)).body;
    perSymbol.ticks = await pagedTicks(baseUrl, symbol);
    for (const interval of ['1m', '5m', '15m', '1h', '1d']) {
      perSymbol[`candles:${interval}`] = (
        await getJson(baseUrl, `/api/v1/candles/${symbol}?interval=${interval}&limit=10000`)
      ).body;
      perSymbol[`indicators:${interval}`] = (
        await getJson(baseUrl, `/api/v1/indicators/${symbol}?interval=${interval}&limit=10000`)
      ).body;
    }
    dump[symbol] = perSymbol;
  }
  dump.alerts = (await getJson(baseUrl, '/api/v1/alerts?limit=10000')).body;
  return dump;
}

/** All ticks of a symbol, paging with `from` past the 10 000 limit. */
async function pagedTicks(baseUrl: string, symbol: string): Promise<unknown[]> {
  const all: { ts: number }[] = [];
  let from = 0;
  for (;;) {
    const { body } = await getJson<{ ticks: { ts: number }[] }>(
      baseUrl,
      `/api/v1/ticks/${symbol}?from=${from}&limit=10000`,
    );
    if (body.ticks.length < 10_000) {
      // The page boundary may split equal timestamps: drop what the previous page already had.
      return mergePage(all, body.ticks);
    }
    const lastTs = body.ticks[body.ticks.length - 1]!.ts;
    const complete = body.ticks.filter((tick) => tick.ts < lastTs);
    mergePage(all, complete);
    from = lastTs;
  }
}

function mergePage<T>(all: T[], page: T[]): T[] {
  all.push(...page);
  return all;
}

/** A distributed-mode role (`ingest`, `process`, `serve`) running in a child process, from `startRole`. */
export interface RunningRole {
  role: string;
  child: ChildProcess;
  /** The stdout line that said the role was ready. */
  readyLine: string;
  stdout: () => string;
  /** The last 64 KiB of stderr, for failure messages. */
  stderr: () => string;
}

const ROLE_OUTPUT_KEEP = 64 * 1024;
/**
 * Extra Node flags for every role started here, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile
 * each role of a benchmark (Node refuses --cpu-prof in NODE_OPTIONS).
 */
const ROLE_NODE_ARGS = (process.env.STREAMLINES_ROLE_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * Starts `streamlines ROLE ARGS` and resolves once a stdout line starts with `readyPrefix`. When the
 * role exits first or the timeout passes, it is SIGKILLed and the promise rejects with its stderr,
 * so a failed start never leaves a process behind.
 */
export async function startRole(
  role: string,
  args: string[],
  readyPrefix: string,
  timeoutMs = 60_000,
): Promise<RunningRole> {
  const child = spawn(process.execPath, [...CLI_NODE_FLAGS, ...ROLE_NODE_ARGS, CLI, role, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-ROLE_OUTPUT_KEEP);
  });
  // Kept reading after the ready line too, so a chatty role never blocks on a full pipe.
  child.stdout!.on('data', (chunk) => {
    stdout = (stdout + chunk).slice(-ROLE_OUTPUT_KEEP);
  });
  const readyLine = await new Promise<string>((resolve, reject) => {
    const fail = (message: string) => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`streamlines ${role} ${message}; stderr:\n${stderr.slice(-4_000)}`));
    };
    const timer = setTimeout(
      () => fail(`printed no "${readyPrefix}" line within ${timeoutMs} ms`),
      timeoutMs,
    );
    const onData = () => {
      const line = stdout.split('\n').find((candidate) => candidate.startsWith(readyPrefix));
      if (line === undefined) return;
      cleanup();
      resolve(line);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited (${signal ?? code}) before it was ready`);
    const onError = (error: Error) => fail(`could not be spawned: ${error.message}`);
    function cleanup() {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
  return { role, child, readyLine, stdout: () => stdout, stderr: () => stderr };
}

/** Starts `streamlines serve ARGS --port 0 --host 127.0.0.1` and resolves once it prints where it listens. */
export async function startServe(
  args: string[],
  timeoutMs = 60_000,
): Promise<RunningRole & { baseUrl: string }> {
  const serve = await startRole(
    'serve',
    [...args, '--port', '0', '--host', '127.0.0.1'],
    'Streamlines listening on ',
    timeoutMs,
  );
  const match = /listening on (http:\/\/\S+)/.exec(serve.readyLine);
  if (!match) {
    await stopRole(serve, 'SIGKILL');
    throw new Error(`streamlines serve printed no address: ${serve.readyLine}`);
  }
  return { ...serve, baseUrl: match[1]! };
}

/** True while the role's process has neither exited nor been killed. */
export function isRunning(role: { child: ChildProcess }): boolean {
  return role.child.exitCode === null && role.child.signalCode === null;
}

/** Sends `signal` to a role and waits for its exit, SIGKILLing it when it has not exited after `killAfterMs`. */
export async function stopRole(
  role: { child: ChildProcess },
  signal: NodeJS.Signals = 'SIGTERM',
  killAfterMs = 10_000,
): Promise<void> {
  if (!isRunning(role)) return;
  const exited = once(role.child, 'exit');
  role.child.kill(signal);
  const timer = setTimeout(() => role.child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Polls `/api/v1/stats` until `done(stats)`; on timeout the error shows the last stats and `context()`
 * (e.g. the roles' stderr). Connection errors count as "not yet" until the deadline.
 */
export async function waitForStats(
  baseUrl: string,
  done: (stats: Record<string, unknown>) => boolean,
  options: { timeoutMs?: number; intervalMs?: number; context?: () => string } = {},
): Promise<Record<string, unknown>> {
  const { timeoutMs = 120_000, intervalMs = 100, context } = options;
  let last: unknown;
  return waitForValue(
    async () => {
      try {
        const { body } = await getJson<Record<string, unknown>>(baseUrl, '/api/v1/stats');
        last = body;
        return done(body) ? body : undefined;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
        return undefined;
      }
    },
    () => `stats of ${baseUrl}; last: ${JSON.stringify(last)}${context ? `\n${context()}` : ''}`,
    timeoutMs,
    intervalMs,
  );
}

/** All dead letters the API returns (up to 10 000), without `receivedAt`, a wall clock that differs per run. */
export async function dumpDeadLetters(baseUrl: string): Promise<Record<string, unknown>[]> {
  const { body } = await getJson<{ deadLetters: Record<string, unknown>[] }>(
    baseUrl,
    '/api/v1/dead-letters?limit=10000',
  );
  return body.deadLetters.map(({ receivedAt: _receivedAt, ...rest }) => rest);
}

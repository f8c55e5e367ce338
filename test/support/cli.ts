/** Drives the real `streamlines` CLI in a child process, for end-to-end tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = join(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'bin/streamlines.js');

export interface RunningCli {
  child: ChildProcess;
  baseUrl: string;
  stderr: () => string;
}

/** Starts `streamlines run ARGS --port 0` and resolves once it prints where it listens. */
export async function startCli(args: string[], timeoutMs = 30_000): Promise<RunningCli> {
  const child = spawn(process.execPath, [CLI, 'run', '--port', '0', '--host', '127.0.0.1', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`CLI did not start within ${timeoutMs} ms: ${stderr}`)),
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
      reject(new Error(`CLI exited with ${code} before listening: ${stderr}`));
    });
  });
  return { child, baseUrl, stderr: () => stderr };
}

/** Runs the CLI to completion (for commands that exit) and returns its exit code and output. */
export async function runCliOnce(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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
export async function waitDrained(baseUrl: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { body } = await getJson<Record<string, unknown>>(baseUrl, '/api/v1/stats');
    if (body.drained === true) return body;
    await sleep(100);
  }
  throw new Error(`not drained within ${timeoutMs} ms`);
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
    for (const interval of ['1m', '5m', '15m', '1h']) {
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

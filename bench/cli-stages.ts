/**
 * Stages that drive the real `streamlines` CLI in a child process: the embedded pipeline end to
 * end (a replay at full speed into the store, with the child's memory over the run) and the
 * latency from ingest to WebSocket clients under a live synthetic feed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { getJson, type RunningCli, startCli, stopCli } from '../test/support/cli.ts';
import { quantile, rssMb } from './util.ts';

const POLL_MS = 50;

export interface PipelineResult {
  ticksPerSec: number;
  ms: number;
  accepted: number;
  /** RSS of the CLI process when it starts listening, halfway through the replay and once drained. */
  rssStartMb: number;
  rssHalfMb: number;
  rssEndMb: number;
  rssPeakMb: number;
}

/**
 * `streamlines run --replay FILE --speed max` into a fresh data dir (embedded log, DuckDB store),
 * timed from the moment the CLI listens until `/api/v1/stats` says drained.
 */
export async function measurePipeline(
  replay: string,
  lines: number,
  dataDir: string,
): Promise<PipelineResult> {
  const cli = await startCli(['--replay', replay, '--speed', 'max', '--data-dir', dataDir]);
  const pid = cli.child.pid!;
  try {
    const started = performance.now();
    const rssStartMb = await rssMb(pid);
    const samples: { at: number; rss: number }[] = [{ at: 0, rss: rssStartMb }];
    let stats: { drained: boolean; accepted: number } = { drained: false, accepted: 0 };
    while (!stats.drained) {
      await sleep(POLL_MS);
      stats = (await getJson<typeof stats>(cli.baseUrl, '/api/v1/stats')).body;
      samples.push({ at: performance.now() - started, rss: await rssMb(pid) });
    }
    const ms = performance.now() - started;
    const rssEndMb = await rssMb(pid);
    const half = samples.reduce((best, sample) =>
      Math.abs(sample.at - ms / 2) < Math.abs(best.at - ms / 2) ? sample : best,
    );
    return {
      ticksPerSec: Math.round(lines / (ms / 1000)),
      ms,
      accepted: stats.accepted,
      rssStartMb,
      rssHalfMb: half.rss,
      rssEndMb,
      rssPeakMb: Math.max(rssEndMb, ...samples.map((sample) => sample.rss)),
    };
  } finally {
    await stopCli(cli);
  }
}

/** A live synthetic market in the CLI, measured over `measureMs` after `warmupMs`. */
export interface LiveMarketOptions {
  dir: string;
  symbols: readonly string[];
  ticksPerSecond: number;
  warmupMs: number;
  measureMs: number;
}

/** Starts `streamlines run` on a synthetic feed of `options` (config and data dir named `name` in `dir`). */
async function startLiveMarket(
  options: LiveMarketOptions,
  name: string,
  extraConfig: Record<string, unknown> = {},
): Promise<RunningCli> {
  const config = path.join(options.dir, `${name}-bench.json`);
  await writeFile(
    config,
    JSON.stringify({
      symbols: options.symbols,
      feeds: [{ type: 'synthetic', ticksPerSecond: options.ticksPerSecond, symbols: options.symbols }],
      ...extraConfig,
    }),
  );
  return startCli(['--config', config, '--data-dir', path.join(options.dir, `${name}-data`)]);
}

export interface WsLatencyResult {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: number;
  /** Tick messages per second that reached the clients in the measured window (all clients together). */
  deliveredPerSec: number;
}

/**
 * A synthetic feed at `ticksPerSecond` over `symbols` in the CLI, one WebSocket client per symbol
 * subscribed to `ticks:SYM`, all in this process. Latency is arrival at the client minus the tick's
 * `receivedAt` (ingest's Date.now()): the same machine's clock on both sides, so no skew, but it
 * includes this process's own event-loop delay in reading the socket.
 */
export async function measureWsLatency(options: LiveMarketOptions): Promise<WsLatencyResult> {
  const cli = await startLiveMarket(options, 'ws', {
    // Every client comes from this one address: lift the per-address cap above their number.
    server: { ws: { maxConnectionsPerClient: options.symbols.length + 10 } },
  });
  const clients: WebSocket[] = [];
  try {
    const wsUrl = `${cli.baseUrl.replace(/^http/, 'ws')}/ws`;
    const latencies: number[] = [];
    let measuring = false;
    let deliveredInWindow = 0;
    await Promise.all(
      options.symbols.map(async (symbol) => {
        const client = new WebSocket(wsUrl);
        clients.push(client);
        await new Promise<void>((resolve, reject) => {
          client.once('error', reject);
          client.once('open', () => {
            client.send(JSON.stringify({ op: 'subscribe', channels: [`ticks:${symbol}`] }));
          });
          client.on('message', (raw) => {
            const arrivedAt = Date.now();
            const message = JSON.parse(String(raw)) as {
              op?: string;
              channel?: string;
              data?: { receivedAt: number };
            };
            if (message.op === 'subscribed') resolve();
            else if (message.op === 'error') reject(new Error(`subscribe ${symbol}: ${String(raw)}`));
            else if (measuring && message.data !== undefined) {
              latencies.push(arrivedAt - message.data.receivedAt);
              deliveredInWindow++;
            }
          });
        });
      }),
    );
    await sleep(options.warmupMs);
    measuring = true;
    const started = performance.now();
    await sleep(options.measureMs);
    measuring = false;
    const windowMs = performance.now() - started;
    if (latencies.length === 0) throw new Error('no tick reached the WebSocket clients');
    latencies.sort((a, b) => a - b);
    return {
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: latencies.at(-1)!,
      samples: latencies.length,
      deliveredPerSec: Math.round(deliveredInWindow / (windowMs / 1000)),
    };
  } finally {
    for (const client of clients) client.terminate();
    await stopCli(cli);
  }
}

export interface IdleCpuResult {
  /** CPU time of the CLI process over the window, as a percentage of one core. */
  cpuPct: number;
  /** RSS at the end of the window. */
  rssMb: number;
  /** Ticks the pipeline accepted during the window, per second. */
  acceptedPerSec: number;
}

/** User + system CPU seconds of a process so far, from /proc/PID/stat (Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100; // USER_HZ, 100 on every Linux this runs on
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/**
 * What a modest live market costs: `streamlines run` with a synthetic feed of `ticksPerSecond` over
 * `symbols` (embedded log, DuckDB store, no client), CPU and RSS of the CLI process measured over
 * `measureMs` after `warmupMs`.
 */
export async function measureIdleCpu(options: LiveMarketOptions): Promise<IdleCpuResult> {
  const cli = await startLiveMarket(options, 'idle');
  const pid = cli.child.pid!;
  try {
    await sleep(options.warmupMs);
    const accepted = async () =>
      (await getJson<{ accepted: number }>(cli.baseUrl, '/api/v1/stats')).body.accepted;
    const cpuBefore = await cpuSeconds(pid);
    const acceptedBefore = await accepted();
    const started = performance.now();
    await sleep(options.measureMs);
    const cpuAfter = await cpuSeconds(pid);
    const acceptedAfter = await accepted();
    const seconds = (performance.now() - started) / 1000;
    return {
      cpuPct: Number((((cpuAfter - cpuBefore) / seconds) * 100).toFixed(1)),
      rssMb: Number((await rssMb(pid)).toFixed(1)),
      acceptedPerSec: Math.round((acceptedAfter - acceptedBefore) / seconds),
    };
  } finally {
    await stopCli(cli);
  }
}

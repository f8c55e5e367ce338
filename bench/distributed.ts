/**
 * `distributedTicksPerSec`: the distributed mode end to end (docs/distributed.md) — `streamlines
 * ingest --replay F --speed max` → Kafka → N `streamlines process` → PostgreSQL, timed until a
 * `streamlines serve` says `drained` — on servers from test/support (found or started), each role
 * its own child process. Also how long ingest alone needed to get everything into Kafka, and the
 * CPU each role (and each server this process started) used meanwhile, to see the bottleneck.
 *
 *   npx node bench/distributed.ts [lines] [processors] [partitions]
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  getJson,
  isRunning,
  type RunningRole,
  startRole,
  startServe,
  stopRole,
} from '../test/support/cli.ts';
import { writeReplay } from '../test/support/generate-ticks.ts';
import { findOrStartKafka, type TestKafka } from '../test/support/kafka.ts';
import { createTestSchema, findOrStartPostgres, type TestPostgres } from '../test/support/postgres.ts';
import { findOrStartRedis, type TestRedis } from '../test/support/redis.ts';
import type { WsLatencyResult } from './cli-stages.ts';
import { SYMBOLS } from './micro.ts';
import { listenerPid, portOf, processStats, processTree, treeCpuSeconds } from './server-cpu.ts';
import { quantile, redisStats } from './util.ts';

/** Ingest prints this (polled every 500 ms) once every feed's end entry is in Kafka, not in its disk buffer. */
const INGEST_ENDED = 'every feed has ended and is in the log';
const POLL_MS = 100;
/** How long the processors get to share the partitions out before ingest starts. */
const SETTLE_TIMEOUT_MS = 20_000;

/** CPU seconds used over the measured window (ingest start → drained). */
export interface DistributedCpu {
  ingestS: number;
  processS: number[];
  serveS: number;
  /**
   * Other descendants of this process by command name: the Kafka broker (`java`), `redis-server`;
   * and `postgres` (the cluster and its backends, found by port: pg_ctl detaches it) when this
   * process started it. Servers given by STREAMLINES_TEST_* are counted (as `kafka`, `postgres`,
   * `redis`) only with STREAMLINES_BENCH_COUNT_GIVEN_SERVERS=1: they may be shared.
   */
  serversS: Record<string, number>;
  /** The whole machine's CPU busy share over the window, %, all cores (other users' work included). */
  machineBusyPct: number;
}

export interface DistributedResult {
  /** Accepted ticks / seconds from ingest ready to serve's `drained: true`. */
  ticksPerSec: number;
  ms: number;
  lines: number;
  accepted: number;
  /** Accepted ticks / seconds from ingest ready to its "every feed has ended and is in the log" line (±0.5 s). */
  ingestTicksPerSec: number | undefined;
  ingestMs: number | undefined;
  /** From spawning ingest to its ready line (node start, Kafka connect, dedup rebuilt from Kafka). */
  ingestStartupMs: number;
  /** True when the processors had shared the partitions out evenly before ingest started. */
  partitionsSettled: boolean;
  processors: number;
  partitions: number;
  cpu: DistributedCpu;
  /** Every role's and every counted server's CPU over the window, µs per accepted tick. */
  cpuUsPerTick: number;
}

type Found<T> = T | { skip: string };

/**
 * Starts `serve` and `count` processors on `config`, each with its own data dir under `dir`, adding
 * each to `roles` as soon as it runs (so the caller stops it whatever fails next).
 */
async function startServeAndProcessors(
  config: string,
  dir: string,
  count: number,
  roles: RunningRole[],
  processArgs: string[] = [],
): Promise<{ serve: RunningRole & { baseUrl: string }; processors: RunningRole[] }> {
  const serve = await startServe(['--config', config, '--data-dir', join(dir, 'serve')]);
  roles.push(serve);
  const processors: RunningRole[] = [];
  for (let n = 1; n <= count; n++) {
    const processor = await startRole(
      'process',
      ['--config', config, '--data-dir', join(dir, `process-${n}`), ...processArgs],
      'Streamlines process started',
    );
    roles.push(processor);
    processors.push(processor);
  }
  return { serve, processors };
}

/** The three servers of a distributed run, and how to stop those this call started. */
interface DistributedServers {
  kafka: TestKafka;
  postgres: TestPostgres;
  redis: TestRedis;
  stop: () => Promise<unknown>;
}

/**
 * Finds or starts Kafka, PostgreSQL and Redis; `kafka`, when given, is used and left running. A
 * missing server never fails the bench: the answer is why it was skipped, with the others stopped.
 */
async function distributedServers(kafka?: TestKafka): Promise<DistributedServers | { skip: string }> {
  const settled = await Promise.allSettled([
    kafka === undefined ? findOrStartKafka() : { ...kafka, stop: async () => {} },
    findOrStartPostgres(),
    findOrStartRedis(),
  ]);
  const servers = settled.map((result) =>
    result.status === 'fulfilled'
      ? result.value
      : // In CI the helpers throw rather than skip; a bench reports the gap instead of failing.
        { skip: result.reason instanceof Error ? result.reason.message : String(result.reason) },
  ) as [Found<TestKafka>, Found<TestPostgres>, Found<TestRedis>];
  const stop = () =>
    Promise.allSettled(servers.map((server) => ('stop' in server ? server.stop() : undefined)));
  const [foundKafka, postgres, redis] = servers;
  if ('skip' in foundKafka || 'skip' in postgres || 'skip' in redis) {
    await stop();
    return { skip: servers.flatMap((server) => ('skip' in server ? [server.skip] : [])).join('; ') };
  }
  return { kafka: foundKafka, postgres, redis, stop };
}

/** Ticks/s through the distributed roles, or why it was not measured (a missing server never fails the bench). */
export async function measureDistributed(options: {
  lines: number;
  processors: number;
  partitions: number;
  /** A broker to use (and leave running), e.g. one shared with the WebSocket stage; else one is found or started. */
  kafka?: TestKafka;
}): Promise<DistributedResult | { skip: string }> {
  const servers = await distributedServers(options.kafka);
  if ('skip' in servers) return servers;
  const { kafka, postgres, redis, stop: stopServers } = servers;

  const dir = await mkdtemp(join(tmpdir(), 'streamlines-bench-distributed-'));
  const roles: RunningRole[] = [];
  let dropSchema: (() => Promise<void>) | undefined;
  try {
    const replay = join(dir, 'ticks.ndjson');
    // The same input as the embedded pipeline's stage (bench/main.ts), at this stage's size.
    await writeReplay(replay, { count: options.lines, seed: 1, hostile: false, symbols: [...SYMBOLS] });
    const created = await createTestSchema(postgres.url);
    dropSchema = created.drop;
    const id = `bench${process.pid}x${Date.now().toString(36)}`;
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        log: { type: 'kafka', brokers: kafka.brokers, partitions: options.partitions, topicPrefix: `${id}.` },
        store: { type: 'postgres', url: postgres.url, schema: created.schema },
        cache: { type: 'redis', url: redis.url, keyPrefix: `${id}:` },
      }),
    );
    const context = () =>
      roles
        .map(
          (role) =>
            `--- ${role.role} (pid ${role.child.pid}, ${isRunning(role) ? 'running' : `exited ${role.child.signalCode ?? role.child.exitCode}`}):\n${role.stderr().slice(-2_000)}`,
        )
        .join('\n');

    const { serve, processors } = await startServeAndProcessors(config, dir, options.processors, roles);
    const partitionsSettled = await waitForEvenShare(processors, options.partitions);

    const ingestSpawned = performance.now();
    let ingestEndedAt: number | undefined;
    const ingest = await startRole(
      'ingest',
      ['--config', config, '--data-dir', join(dir, 'ingest'), '--replay', replay, '--speed', 'max'],
      'Streamlines ingest started',
    );
    const started = performance.now();
    roles.push(ingest);
    ingest.child.stderr!.on('data', () => {
      if (ingestEndedAt === undefined && ingest.stderr().includes(INGEST_ENDED))
        ingestEndedAt = performance.now();
    });
    const cpuBefore = await cpuSample(roles);
    const serverTrees = await countedServers({ kafka, postgres, redis });
    const serversBefore = await Promise.all(serverTrees.map(({ pid }) => treeCpuSeconds(pid)));

    const timeoutMs = 120_000 + options.lines / 2;
    let stats: Record<string, unknown> | undefined;
    while (stats?.drained !== true) {
      if (performance.now() - started > timeoutMs) {
        throw new Error(
          `not drained within ${timeoutMs} ms; last stats ${JSON.stringify(stats)}\n${context()}`,
        );
      }
      const dead = roles.find((role) => !isRunning(role));
      if (dead) throw new Error(`streamlines ${dead.role} exited during the run\n${context()}`);
      await sleep(POLL_MS);
      stats = (await getJson<Record<string, unknown>>(serve.baseUrl, '/api/v1/stats')).body;
    }
    const ms = performance.now() - started;
    const cpuAfter = await cpuSample(roles);
    const serversAfter = await Promise.all(serverTrees.map(({ pid }) => treeCpuSeconds(pid)));
    // The line may come after the drain was seen when both fall in one 500 ms poll of ingest.
    for (let waited = 0; ingestEndedAt === undefined && waited < 2_000; waited += POLL_MS) {
      await sleep(POLL_MS);
      if (ingest.stderr().includes(INGEST_ENDED)) ingestEndedAt = performance.now();
    }

    const accepted = Number(stats.accepted);
    const ingestMs = ingestEndedAt === undefined ? undefined : ingestEndedAt - started;
    const cpu = windowCpu(cpuBefore, cpuAfter, roles, ingest, processors, serve);
    serverTrees.forEach(({ name }, index) => {
      cpu.serversS[name] = round2(serversAfter[index]! - serversBefore[index]!);
    });
    const cpuS =
      cpu.ingestS +
      cpu.processS.reduce((sum, value) => sum + value, 0) +
      cpu.serveS +
      Object.values(cpu.serversS).reduce((sum, value) => sum + value, 0);
    return {
      ticksPerSec: Math.round(accepted / (ms / 1000)),
      ms: Math.round(ms),
      lines: options.lines,
      accepted,
      ingestTicksPerSec: ingestMs === undefined ? undefined : Math.round(accepted / (ingestMs / 1000)),
      ingestMs: ingestMs === undefined ? undefined : Math.round(ingestMs),
      ingestStartupMs: Math.round(started - ingestSpawned),
      partitionsSettled,
      processors: options.processors,
      partitions: options.partitions,
      cpuUsPerTick: Number(((cpuS * 1e6) / accepted).toFixed(1)),
      cpu,
    };
  } finally {
    await Promise.allSettled(roles.map((role) => stopRole(role, 'SIGTERM', 5_000)));
    await dropSchema?.().catch(() => undefined);
    await stopServers();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The servers whose CPU is counted by port: a PostgreSQL cluster this process started (pg_ctl
 * detaches it, so it is no descendant), and with STREAMLINES_BENCH_COUNT_GIVEN_SERVERS=1 the servers
 * given by STREAMLINES_TEST_* (they may be shared with other work, so not by default).
 */
async function countedServers(servers: {
  kafka: TestKafka;
  postgres: TestPostgres;
  redis: TestRedis;
}): Promise<{ name: string; pid: number }[]> {
  const given = process.env.STREAMLINES_BENCH_COUNT_GIVEN_SERVERS === '1';
  const candidates = [
    { name: 'kafka', counted: given && !servers.kafka.started, address: servers.kafka.brokers[0] },
    { name: 'postgres', counted: servers.postgres.started || given, address: servers.postgres.url },
    { name: 'redis', counted: given && !servers.redis.started, address: servers.redis.url },
  ];
  const found: { name: string; pid: number }[] = [];
  for (const { name, counted, address } of candidates) {
    if (!counted || address === undefined) continue;
    const pid = await listenerPid(portOf(address));
    if (pid !== undefined) found.push({ name, pid });
  }
  return found;
}

/**
 * Waits until every partition has exactly one owner and none owns more than its share, reading the
 * processors' ready lines and their "took/gave up partition N" events. A processor gives up one
 * surplus partition a second, so starting ingest at once would time a rebalance, not the roles.
 */
async function waitForEvenShare(processors: RunningRole[], partitions: number): Promise<boolean> {
  const share = Math.ceil(partitions / processors.length);
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const owned = processors.map(ownedPartitions);
    const all = owned.flatMap((set) => [...set]);
    if (
      new Set(all).size === partitions &&
      all.length === partitions &&
      owned.every((set) => set.size <= share)
    )
      return true;
    if (performance.now() > deadline) return false;
    await sleep(POLL_MS);
  }
}

/** Partitions a processor owns now, from its ready line and its events in order. */
function ownedPartitions(processor: RunningRole): Set<number> {
  const owned = new Set<number>();
  const initial = /partitions owned: ([\d, ]+)\)/.exec(processor.readyLine);
  for (const partition of initial?.[1]?.split(',') ?? []) owned.add(Number(partition.trim()));
  for (const match of processor.stderr().matchAll(/(took|gave up) partition (\d+)/g)) {
    if (match[1] === 'took') owned.add(Number(match[2]));
    else owned.delete(Number(match[2]));
  }
  return owned;
}

interface CpuSample {
  /** utime + stime in seconds of every descendant of this process. */
  byPid: Map<number, number>;
  names: Map<number, string>;
  /** The machine's aggregate jiffies from /proc/stat. */
  machine: { total: number; idle: number };
}

/** CPU used so far by the roles and every other descendant of this process (the servers it started). */
async function cpuSample(roles: RunningRole[]): Promise<CpuSample> {
  const stats = await processStats();
  const ours = processTree(stats, process.pid);
  ours.delete(process.pid);
  for (const role of roles) if (role.child.pid !== undefined) ours.add(role.child.pid);
  const byPid = new Map<number, number>();
  const names = new Map<number, string>();
  for (const pid of ours) {
    const stat = stats.get(pid);
    if (stat === undefined) continue;
    byPid.set(pid, stat.cpuS);
    names.set(pid, stat.name);
  }
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const jiffies = line.split(/\s+/).slice(1).map(Number);
  return {
    byPid,
    names,
    machine: {
      total: jiffies.reduce((sum, value) => sum + (Number.isFinite(value) ? value : 0), 0),
      // idle + iowait
      idle: (jiffies[3] ?? 0) + (jiffies[4] ?? 0),
    },
  };
}

/** CPU seconds between two samples: each role, the other descendants by name, the whole machine's busy share. */
function windowCpu(
  before: CpuSample,
  after: CpuSample,
  roles: RunningRole[],
  ingest: RunningRole,
  processors: RunningRole[],
  serve: RunningRole,
): DistributedCpu {
  const used = (pid: number | undefined) =>
    pid === undefined ? 0 : round2((after.byPid.get(pid) ?? 0) - (before.byPid.get(pid) ?? 0));
  const serversS: Record<string, number> = {};
  for (const [pid, cpuS] of after.byPid) {
    if (roles.some((role) => role.child.pid === pid)) continue;
    const name = after.names.get(pid) ?? String(pid);
    serversS[name] = round2((serversS[name] ?? 0) + cpuS - (before.byPid.get(pid) ?? 0));
  }
  const machineTotal = after.machine.total - before.machine.total;
  return {
    ingestS: used(ingest.child.pid),
    processS: processors.map((processor) => used(processor.child.pid)),
    serveS: used(serve.child.pid),
    serversS,
    machineBusyPct:
      machineTotal > 0
        ? Number(
            ((100 * (machineTotal - (after.machine.idle - before.machine.idle))) / machineTotal).toFixed(1),
          )
        : Number.NaN,
  };
}

function round2(value: number): number {
  return Number(value.toFixed(2));
}

/**
 * Where ticks go in the WebSocket run, per second of the window, stage by stage, to tell a slow stage
 * from a lossy one: records the synthetic feed produced in ingest, Kafka records appended, ticks the
 * processors committed, live messages serve's hub got from Redis (ticks and candles, watched or not),
 * deliveries it sent and dropped (a client over `server.ws.maxQueuedBytes`), and tick messages the
 * bench's clients read.
 */
interface DistributedWsResult extends WsLatencyResult {
  flow: {
    /** `streamlines_feed_messages_total` of ingest (its `--port` endpoint). */
    producedPerSec: number;
    /** Ingest's appends that went to its disk buffer (Kafka failed or took over 30 s), in the window: not per second. */
    spooledAppends: number;
    /**
     * Kafka records appended (serve's `logEndOffset`, summed over the partitions): one per append and
     * partition since entries are packed (docs/kafka.md), transaction markers included. 0 while
     * ingest's appends are stuck.
     */
    kafkaRecordsPerSec: number;
    /** Ticks the processors committed, and records (ticks, rejected, duplicates). */
    committedPerSec: number;
    committedRecordsPerSec: number;
    hubPublishedPerSec: number;
    hubSentPerSec: number;
    hubDroppedPerSec: number;
    /** Tick messages the bench's clients read (= `deliveredPerSec`). */
    readPerSec: number;
    /**
     * Connections Redis accepted in the window (`total_connections_received`): nothing connects in
     * a steady run, so each one is a reconnect, as when Redis cuts off a subscriber whose output
     * buffer passes `client-output-buffer-limit pubsub` (a serve reading too slowly), and what was
     * queued for it is lost.
     */
    redisReconnects: number;
  };
  /**
   * Mean latency from ingest's `receivedAt` to each stage, ms, over the window: the processors
   * applying the tick (`streamlines_tick_processed_latency_seconds`, sampled), serve's hub handing it
   * to the sockets (`streamlines_tick_ws_sent_latency_seconds`, sampled), the bench's clients reading it.
   */
  meanLatencyMs: { processed: number; hubSent: number; clientRead: number };
  /** Per cent of ticks over 50 ms (the target's p99) at the same three points. */
  over50MsPct: { processed: number; hubSent: number; clientRead: number };
  /** CPU seconds per role (and this bench process, which runs the clients) over the window. */
  cpu: DistributedCpu & { benchS: number };
}

interface DeliveryCounters {
  produced: number;
  spooled: number;
  kafkaRecords: number;
  received: number;
  accepted: number;
  published: number;
  sent: number;
  dropped: number;
  /** Sum and count of the processors' processed-latency histograms, and serve's sent-latency one. */
  processedSum: number;
  processedCount: number;
  /** Of those, observations of at most 50 ms (the histograms' `le="0.05"` bucket). */
  processedFast: number;
  sentSum: number;
  sentCount: number;
  sentFast: number;
}

/** The label set of a latency histogram's 50 ms bucket, escaped for metricSum's pattern. */
const LE_50_MS = '\\{le="0\\.05"\\}';

/** A counter's value (summed over its series) in a Prometheus text exposition; NaN when absent. */
function metricSum(metrics: string, name: string): number {
  let sum = Number.NaN;
  for (const match of metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
    sum = (Number.isNaN(sum) ? 0 : sum) + Number(match[1]);
  }
  return sum;
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

async function deliveryCounters(
  baseUrl: string,
  ingestUrl: string | undefined,
  processUrls: string[],
): Promise<DeliveryCounters> {
  const stats = (
    await getJson<{ accepted: number; received: number; logEndOffset: number }>(baseUrl, '/api/v1/stats')
  ).body;
  const metrics = await metricsOf(baseUrl);
  const ingest = ingestUrl === undefined ? '' : await metricsOf(ingestUrl);
  const processors = await Promise.all(processUrls.map(metricsOf));
  const overProcessors = (name: string) =>
    processors.reduce((sum, text) => sum + (metricSum(text, name) || 0), 0);
  return {
    produced: metricSum(ingest, 'streamlines_feed_messages_total'),
    spooled: metricSum(ingest, 'streamlines_ingest_spooled_appends_total'),
    kafkaRecords: stats.logEndOffset,
    received: stats.received,
    accepted: stats.accepted,
    published: metricSum(metrics, 'streamlines_ws_messages_published_total'),
    sent: metricSum(metrics, 'streamlines_ws_messages_sent_total'),
    dropped: metricSum(metrics, 'streamlines_ws_messages_dropped_total'),
    processedSum: overProcessors('streamlines_tick_processed_latency_seconds_sum'),
    processedCount: overProcessors('streamlines_tick_processed_latency_seconds_count'),
    processedFast: overProcessors(`streamlines_tick_processed_latency_seconds_bucket${LE_50_MS}`),
    sentSum: metricSum(metrics, 'streamlines_tick_ws_sent_latency_seconds_sum'),
    sentCount: metricSum(metrics, 'streamlines_tick_ws_sent_latency_seconds_count'),
    sentFast: metricSum(metrics, `streamlines_tick_ws_sent_latency_seconds_bucket${LE_50_MS}`),
  };
}

/** The address a role printed as `Streamlines ROLE metrics on URL` (it was started with `--port 0`). */
function opsUrl(role: RunningRole): string | undefined {
  return /metrics on (http:\/\/\S+)/.exec(role.stdout())?.[1];
}

/**
 * `distributedWsLatencyP99Ms`: tick → WebSocket client through the distributed roles, measured from
 * outside — `ingest` with a synthetic feed at `ticksPerSecond` over `symbols` → Kafka → 2 `process`
 * → Redis → `serve`, one WebSocket client per symbol on `serve` subscribed to `ticks:SYM`. Latency is
 * arrival at the client minus the tick's `receivedAt` (ingest's clock; one machine, so no skew).
 */
export async function measureDistributedWsLatency(options: {
  ticksPerSecond: number;
  symbols: number;
  processors: number;
  partitions: number;
  warmupMs: number;
  measureMs: number;
  /** A broker to use (and leave running); else one is found or started. */
  kafka?: TestKafka;
}): Promise<DistributedWsResult | { skip: string }> {
  const servers = await distributedServers(options.kafka);
  if ('skip' in servers) return servers;
  const { kafka, postgres, redis, stop: stopServers } = servers;
  const dir = await mkdtemp(join(tmpdir(), 'streamlines-bench-distributed-ws-'));
  const roles: RunningRole[] = [];
  const clients: WebSocket[] = [];
  let dropSchema: (() => Promise<void>) | undefined;
  try {
    const symbols = SYMBOLS.slice(0, options.symbols);
    const created = await createTestSchema(postgres.url);
    dropSchema = created.drop;
    const id = `benchws${process.pid}x${Date.now().toString(36)}`;
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        symbols,
        feeds: [{ type: 'synthetic', ticksPerSecond: options.ticksPerSecond, symbols }],
        log: { type: 'kafka', brokers: kafka.brokers, partitions: options.partitions, topicPrefix: `${id}.` },
        store: { type: 'postgres', url: postgres.url, schema: created.schema },
        cache: { type: 'redis', url: redis.url, keyPrefix: `${id}:` },
        // Every client comes from this one address: lift the per-address cap above their number.
        server: { ws: { maxConnectionsPerClient: symbols.length + 10 } },
      }),
    );
    // --port 0: the processors' and ingest's /metrics, for the flow report.
    const { serve, processors } = await startServeAndProcessors(config, dir, options.processors, roles, [
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ]);
    await waitForEvenShare(processors, options.partitions);
    const latencies: number[] = [];
    let measuring = false;
    const wsUrl = `${serve.baseUrl.replace(/^http/, 'ws')}/ws`;
    await Promise.all(
      symbols.map(async (symbol) => {
        const client = new WebSocket(wsUrl);
        clients.push(client);
        await new Promise<void>((resolve, reject) => {
          client.once('error', reject);
          client.once('open', () =>
            client.send(JSON.stringify({ op: 'subscribe', channels: [`ticks:${symbol}`] })),
          );
          client.on('message', (raw) => {
            const arrivedAt = Date.now();
            const message = JSON.parse(String(raw)) as { op?: string; data?: { receivedAt: number } };
            if (message.op === 'subscribed') resolve();
            else if (measuring && message.data !== undefined)
              latencies.push(arrivedAt - message.data.receivedAt);
          });
        });
      }),
    );
    const ingest = await startRole(
      'ingest',
      ['--config', config, '--data-dir', join(dir, 'ingest'), '--port', '0', '--host', '127.0.0.1'],
      'Streamlines ingest started',
    );
    roles.push(ingest);
    await sleep(options.warmupMs);
    const ingestUrl = opsUrl(ingest);
    const processUrls = processors.map(opsUrl).filter((url) => url !== undefined);
    const redisConnectionsBefore = (await redisStats(redis.url)).total_connections_received!;
    const serverTrees = await countedServers({ kafka, postgres, redis });
    // Reading /proc takes a while: the CPU samples enclose the window, the counters sit right at its ends.
    const cpuBefore = await cpuSample(roles);
    const serversBefore = await Promise.all(serverTrees.map(({ pid }) => treeCpuSeconds(pid)));
    const benchBefore = process.cpuUsage();
    const flowBefore = await deliveryCounters(serve.baseUrl, ingestUrl, processUrls);
    measuring = true;
    const started = performance.now();
    await sleep(options.measureMs);
    measuring = false;
    const windowMs = performance.now() - started;
    const flowAfter = await deliveryCounters(serve.baseUrl, ingestUrl, processUrls);
    const benchUsage = process.cpuUsage(benchBefore);
    const cpuAfter = await cpuSample(roles);
    const serversAfter = await Promise.all(serverTrees.map(({ pid }) => treeCpuSeconds(pid)));
    // No tick in the window (a stage stuck) leaves the quantiles NaN (null in JSON): the flow says where.
    const samples = latencies.length;
    const clientSum = latencies.reduce((sum, value) => sum + value, 0);
    latencies.sort((a, b) => a - b);
    const delta = (key: keyof DeliveryCounters) => flowAfter[key] - flowBefore[key];
    const perSecond = (key: keyof DeliveryCounters) => Math.round(delta(key) / (windowMs / 1000));
    const overPct = (fast: keyof DeliveryCounters, count: keyof DeliveryCounters) =>
      Number((100 - (100 * delta(fast)) / delta(count)).toFixed(2));
    const meanMs = (sum: keyof DeliveryCounters, count: keyof DeliveryCounters) =>
      Number(((1000 * delta(sum)) / delta(count)).toFixed(1));
    const cpu = windowCpu(cpuBefore, cpuAfter, roles, ingest, processors, serve);
    serverTrees.forEach(({ name }, index) => {
      cpu.serversS[name] = round2(serversAfter[index]! - serversBefore[index]!);
    });
    return {
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: latencies.at(-1) ?? Number.NaN,
      samples,
      deliveredPerSec: Math.round(samples / (windowMs / 1000)),
      flow: {
        producedPerSec: perSecond('produced'),
        spooledAppends: delta('spooled'),
        kafkaRecordsPerSec: perSecond('kafkaRecords'),
        committedPerSec: perSecond('accepted'),
        committedRecordsPerSec: perSecond('received'),
        hubPublishedPerSec: perSecond('published'),
        hubSentPerSec: perSecond('sent'),
        hubDroppedPerSec: perSecond('dropped'),
        readPerSec: Math.round(samples / (windowMs / 1000)),
        // Less the connection that read the counter afterwards.
        redisReconnects:
          (await redisStats(redis.url)).total_connections_received! - redisConnectionsBefore - 1,
      },
      over50MsPct: {
        processed: overPct('processedFast', 'processedCount'),
        hubSent: overPct('sentFast', 'sentCount'),
        clientRead: Number(((100 * latencies.filter((value) => value > 50).length) / samples).toFixed(2)),
      },
      meanLatencyMs: {
        processed: meanMs('processedSum', 'processedCount'),
        hubSent: meanMs('sentSum', 'sentCount'),
        clientRead: Number((clientSum / samples).toFixed(1)),
      },
      cpu: {
        ...cpu,
        benchS: round2((benchUsage.user + benchUsage.system) / 1e6),
      },
    };
  } finally {
    for (const client of clients) client.terminate();
    await Promise.allSettled(roles.map((role) => stopRole(role, 'SIGTERM', 5_000)));
    await dropSchema?.().catch(() => undefined);
    await stopServers();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  if (process.argv[2] === 'ws') {
    // npx node bench/distributed.ts ws [ticksPerSecond] [symbols] [warmupSeconds]
    const [ticksPerSecond = 20_000, symbols = 100, warmupSeconds = 5] = process.argv.slice(3).map(Number);
    const result = await measureDistributedWsLatency({
      ticksPerSecond,
      symbols,
      processors: 2,
      partitions: 3,
      warmupMs: warmupSeconds * 1_000,
      measureMs: 15_000,
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    const [lines = 200_000, processors = 2, partitions = 3] = process.argv.slice(2).map(Number);
    const result = await measureDistributed({ lines, processors, partitions });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}

/**
 * The distributed live path alone, in one process, at a live rate: a real ProcessRunner publishes
 * through `createLivePublisher` and the Redis live bus; a RemotePipelineView on a second Redis
 * connection hands what arrives to a real WsHub, whose clients are sockets that only count bytes
 * (one client per symbol on `ticks:SYM`, as `bench/distributed.ts ws`). Input: `ticksPerSecond`
 * ticks over 100 symbols, appended to a memory log every 50 ms as ingest appends them.
 *
 * What it reports is load-independent enough for a shared machine: this process's CPU per tick
 * (processing, publishing, receiving and fanning out together; the memory store costs next to
 * nothing), the bus messages and Redis bytes per tick, and the latency from append to the hub.
 *
 * With `postgres`, the runner commits to a PostgreSQL store (test/support's server, a fresh schema)
 * instead of the memory store, on the same thread as the live path, as a `process` role does: the
 * difference in the latency's tail is what those commits cost the live stream.
 *
 *   npx node bench/live-bus.ts [ticksPerSecond] [seconds] [memory|postgres]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createLivePublisher } from '../src/cache/live-publisher.ts';
import { closeCache, createCache, openCache } from '../src/cache/registry.ts';
import { RemotePipelineView } from '../src/cache/remote-pipeline-view.ts';
import { cacheConfigSchema } from '../src/config/schema.ts';
import { emptyCounters, type IngestEntry, TOPIC_TICKS } from '../src/core/records.ts';
import { MemoryLog } from '../src/log/memory/memory-log.ts';
import { DEFAULT_ANOMALY } from '../src/process/anomaly.ts';
import { ProcessRunner } from '../src/process/process-runner.ts';
import { WsHub } from '../src/serve/ws/ws-hub.ts';
import { MemoryStore } from '../src/store/memory/memory-store.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { createTestSchema, findOrStartPostgres } from '../test/support/postgres.ts';
import { findOrStartRedis } from '../test/support/redis.ts';
import { SYMBOLS } from './micro.ts';
import { quantile, redisStats } from './util.ts';

const APPEND_EVERY_MS = 50;
const WARMUP_MS = 2_000;
const RECEIVED_AT = Buffer.from('"receivedAt":');

export interface LiveBusResult {
  ticks: number;
  cpuUsPerTick: number;
  busMessagesPerTick: number;
  redisInBytesPerTick: number;
  redisOutBytesPerTick: number;
  /** Append to the memory log → the hub handing the tick to its client, ms. */
  p50Ms: number;
  p99Ms: number;
}

export async function measureLiveBus(
  ticksPerSecond: number,
  seconds: number,
  storeType: 'memory' | 'postgres' = 'memory',
): Promise<LiveBusResult> {
  const redis = await findOrStartRedis();
  if ('skip' in redis) throw new Error(redis.skip);
  const postgres = storeType === 'postgres' ? await findOrStartPostgres() : undefined;
  if (postgres !== undefined && 'skip' in postgres) throw new Error(postgres.skip);
  const schema = postgres === undefined ? undefined : await createTestSchema(postgres.url);
  const config = cacheConfigSchema.parse({
    type: 'redis',
    url: redis.url,
    keyPrefix: `livebus${process.pid}:`,
  });
  const processSide = createCache(config);
  const serveSide = createCache(config);
  await openCache(processSide);
  await openCache(serveSide);
  const log = new MemoryLog();
  const store =
    postgres === undefined || schema === undefined
      ? new MemoryStore()
      : new PostgresStore({ url: postgres.url, schema: schema.schema });
  await log.open();
  await store.open();
  const publisher = createLivePublisher(processSide);
  const runner = new ProcessRunner({
    log,
    store,
    config: { latenessMs: 10_000, priceRules: [], anomaly: DEFAULT_ANOMALY },
    publish: publisher.publish,
  });
  const view = new RemotePipelineView({
    bus: serveSide.bus,
    stats: {
      read: async () => ({ ...emptyCounters(), drained: false, logEndOffset: 0, processedOffset: 0 }),
    },
    refreshMs: 60_000,
  });
  const hub = new WsHub({
    maxQueuedBytes: 1 << 20,
    maxSubscriptions: 100,
    maxFrameBytes: 1 << 16,
    maxMessagesPerSecond: 1_000,
  });
  let measuring = false;
  const latencies: number[] = [];
  for (const symbol of SYMBOLS) {
    const client = hub.addClient({
      readyState: 1,
      bufferedAmount: 0,
      send: (frame: Buffer) => {
        if (!measuring) return;
        // Read off the frame's text rather than parsed, so the clients cost next to nothing here.
        const at = frame.indexOf(RECEIVED_AT);
        if (at >= 0)
          latencies.push(
            Date.now() -
              Number(frame.toString('latin1', at + RECEIVED_AT.length, at + RECEIVED_AT.length + 13)),
          );
      },
      close: () => {},
    });
    hub.receive(client, Buffer.from(JSON.stringify({ op: 'subscribe', channels: [`ticks:${symbol}`] })));
  }
  await view.open();
  const stopLive = view.onLive(hub.publish);
  const stop = new AbortController();
  await runner.open();
  const running = runner.run(stop.signal);

  let price = 100;
  const ids = new Map<string, number>();
  let random = 42;
  const next = () => {
    random = (Math.imul(random, 1_664_525) + 1_013_904_223) >>> 0;
    return random / 2 ** 32;
  };
  let owed = 0;
  let appended = 0;
  let last = Date.now();
  const feed = (async () => {
    while (!stop.signal.aborted) {
      await sleep(APPEND_EVERY_MS);
      const now = Date.now();
      owed += ((now - last) / 1000) * ticksPerSecond;
      last = now;
      const count = Math.floor(owed);
      owed -= count;
      const records = [];
      for (let i = 0; i < count; i++) {
        const symbol = SYMBOLS[Math.floor(next() * SYMBOLS.length)]!;
        const id = (ids.get(symbol) ?? 0) + 1;
        ids.set(symbol, id);
        price *= 1 + (next() - 0.5) * 0.0008;
        const value: IngestEntry = {
          kind: 'tick',
          source: 'synthetic',
          symbol,
          ts: now,
          price: Math.round(price * 100) / 100,
          size: 1 + next(),
          id: String(id),
          side: next() < 0.5 ? 'buy' : 'sell',
          receivedAt: now,
        };
        records.push({ key: symbol, value });
      }
      await log.append(TOPIC_TICKS, records);
      if (measuring) appended += count;
    }
  })();

  await sleep(WARMUP_MS);
  const redisBefore = await redisStats(redis.url);
  const publishedBefore = hub.stats().published;
  const cpuBefore = process.cpuUsage();
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const cpu = process.cpuUsage(cpuBefore);
  const published = hub.stats().published - publishedBefore;
  const redisAfter = await redisStats(redis.url);
  stop.abort();
  await feed;
  await running;
  stopLive();
  await view.close();
  await publisher.flushed();
  await closeCache(processSide);
  await closeCache(serveSide);
  await log.close();
  await store.close();
  await schema?.drop();
  await postgres?.stop();
  await redis.stop();
  latencies.sort((a, b) => a - b);
  const perTick = (value: number) => Number((value / appended).toFixed(2));
  return {
    ticks: appended,
    cpuUsPerTick: perTick(cpu.user + cpu.system),
    busMessagesPerTick: perTick(published),
    // Two INFO connections' own bytes are in these too: a few KB against megabytes.
    redisInBytesPerTick: perTick(redisAfter.total_net_input_bytes! - redisBefore.total_net_input_bytes!),
    redisOutBytesPerTick: perTick(redisAfter.total_net_output_bytes! - redisBefore.total_net_output_bytes!),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}

if (import.meta.main) {
  const [ticksPerSecond = 20_000, seconds = 10] = process.argv.slice(2, 4).map(Number);
  const result = await measureLiveBus(
    ticksPerSecond,
    seconds,
    process.argv[4] === 'postgres' ? 'postgres' : 'memory',
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/**
 * `npm run bench`: every docs/design.md target measured in one place, each next to the cost of
 * JSON.parse alone on the same input, so the ratios hold on a noisy, shared machine.
 *
 *   npm run bench [-- --quick] [-- --ticks N] [-- --json]
 *
 * `--quick`: small sizes for CI (the whole run well under a minute). `--ticks N`: lines in the
 * replay (default 2 000 000). `--json`: progress goes to stderr and the LAST line of stdout is one
 * JSON object with every number; otherwise a table per stage. docs/benchmarks.md explains them.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeReplay } from '../test/support/generate-ticks.ts';
import { findOrStartKafka, type TestKafka } from '../test/support/kafka.ts';
import { measureIdleCpu, measurePipeline, measureWsLatency } from './cli-stages.ts';
import { measureDistributed, measureDistributedWsLatency } from './distributed.ts';
import { measureKafka } from './kafka.ts';
import {
  measureDuckDbStore,
  measureIngest,
  measureIngestToLog,
  measureParse,
  measurePostgresStore,
  measureProcess,
  SYMBOLS,
  syntheticEntries,
} from './micro.ts';
import { measureRestCandles } from './rest-candles.ts';
import { machineInfo, thousands } from './util.ts';

const { values } = parseArgs({
  options: {
    ticks: { type: 'string' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const ticks = Number(values.ticks ?? (quick ? 100_000 : 2_000_000));
if (!Number.isInteger(ticks) || ticks < 1_000) {
  process.stderr.write(`--ticks must be an integer >= 1000, got ${values.ticks}\n`);
  process.exit(2);
}
/** Sizes per stage: quick keeps CI short, full is what docs/benchmarks.md reports. */
const size = quick
  ? {
      rounds: 2,
      processTicks: 300_000,
      storeBatches: 10,
      // Starting a throwaway cluster costs seconds: quick mode only uses a server it is given.
      postgres: Boolean(process.env.STREAMLINES_TEST_PG_URL),
      postgresBatches: 10,
      // Kafka, PostgreSQL, Redis and four roles cost far more than the run: only on servers it is given.
      distributed: Boolean(
        process.env.STREAMLINES_TEST_KAFKA_BROKERS &&
          process.env.STREAMLINES_TEST_PG_URL &&
          process.env.STREAMLINES_TEST_REDIS_URL,
      ),
      distributedTicks: 5_000,
      wsWarmupMs: 1_000,
      wsMeasureMs: 3_000,
      idleWarmupMs: 3_000,
      idleMeasureMs: 5_000,
      restRequests: 100,
      restCandlesPerSymbol: 3_000,
    }
  : {
      rounds: 3,
      processTicks: 2_000_000,
      storeBatches: 100,
      postgres: true,
      postgresBatches: 40,
      distributed: true,
      distributedTicks: 200_000,
      wsWarmupMs: 3_000,
      wsMeasureMs: 20_000,
      idleWarmupMs: 10_000,
      idleMeasureMs: 30_000,
      restRequests: 1_000,
      restCandlesPerSymbol: 25_000,
    };
const WS_TICKS_PER_SECOND = 20_000;

const say = (text: string) => (values.json ? process.stderr : process.stdout).write(`${text}\n`);
const rate = (value: number, unit = 'ticks/s') => `${thousands(value)} ${unit}`;
const ms = (value: number) => `${value.toFixed(2)} ms`;
const mb = (value: number) => `${value.toFixed(1)} MB`;

/** Rows of the human table: stage, result, docs/design.md target (if any). */
const table: [string, string, string][] = [];
const result: Record<string, unknown> = {};
const skipped: Record<string, string> = {};

const machine = machineInfo();
const dir = await mkdtemp(join(tmpdir(), 'streamlines-bench-'));
const startedAt = performance.now();
/** One broker for both distributed stages (set below), stopped at the end whatever happens. */
let sharedKafka: TestKafka | undefined;
try {
  const replay = join(dir, 'ticks.ndjson');
  say(`generating ${thousands(ticks)} ticks over ${SYMBOLS.length} symbols...`);
  await writeReplay(replay, { count: ticks, seed: 1, hostile: false, symbols: [...SYMBOLS] });
  let lines: string[] | undefined = (await readFile(replay, 'utf8'))
    .split('\n')
    .filter((line) => line !== '');
  const lineCount = lines.length;

  const parseTicksPerSec = measureParse(lines, size.rounds);
  result.parseTicksPerSec = parseTicksPerSec;
  say(`JSON.parse alone: ${rate(parseTicksPerSec)}`);
  table.push(['JSON.parse alone (the yardstick)', rate(parseTicksPerSec), '']);
  const vsParse = (value: number) => `${((value / parseTicksPerSec) * 100).toFixed(1)} % of parse`;

  let ingest: ReturnType<typeof measureIngest> | undefined = measureIngest(lines, size.rounds);
  result.ingestTicksPerSec = ingest.ticksPerSec;
  say(`ingest (parse + validate + dedup): ${rate(ingest.ticksPerSec)}`);
  table.push(['ingest: parse + validate + dedup', rate(ingest.ticksPerSec), vsParse(ingest.ticksPerSec)]);

  result.processReplayTicksPerSec = measureProcess(ingest.entries, size.rounds);
  ingest = undefined;
  say(`processor on the replay's ticks: ${rate(result.processReplayTicksPerSec as number)}`);
  table.push(["processor alone, the replay's ticks", rate(result.processReplayTicksPerSec as number), '']);

  result.ingestLogTicksPerSec = await measureIngestToLog(lines);
  say(`Ingest class into a MemoryLog: ${rate(result.ingestLogTicksPerSec as number)}`);
  table.push([
    'ingest: real Ingest into a MemoryLog',
    rate(result.ingestLogTicksPerSec as number),
    vsParse(result.ingestLogTicksPerSec as number),
  ]);

  const kafka = await measureKafka(lines);
  if ('skip' in kafka) skipped.kafka = kafka.skip;
  else {
    result.kafkaTicksPerSec = kafka.ticksPerSec;
    table.push(['Kafka log', rate(kafka.ticksPerSec), vsParse(kafka.ticksPerSec)]);
  }
  lines = undefined;

  let entries: ReturnType<typeof syntheticEntries> | undefined = syntheticEntries(size.processTicks);
  result.processTicksPerSec = measureProcess(entries, size.rounds);
  entries = undefined;
  say(`processor alone (1 000 ticks/s market, 100 symbols): ${rate(result.processTicksPerSec as number)}`);
  table.push([
    'processor alone, 100 symbols, one core',
    rate(result.processTicksPerSec as number),
    '>= 5,000,000 ticks/s',
  ]);

  result.storeRowsPerSec = await measureDuckDbStore(size.storeBatches);
  say(`DuckDB store, batches of 5 000: ${rate(result.storeRowsPerSec as number, 'rows/s')}`);
  table.push(['DuckDB store, batches of 5,000 ticks', rate(result.storeRowsPerSec as number, 'rows/s'), '']);
  if (size.postgres) {
    const postgres = await measurePostgresStore(size.postgresBatches);
    if ('skip' in postgres) skipped.postgres = postgres.skip;
    else {
      result.postgresRowsPerSec = postgres.rowsPerSec;
      say(`PostgreSQL store (COPY), batches of 5 000: ${rate(postgres.rowsPerSec, 'rows/s')}`);
      table.push(['PostgreSQL store (COPY), batches of 5,000', rate(postgres.rowsPerSec, 'rows/s'), '']);
    }
  } else skipped.postgres = 'quick mode without STREAMLINES_TEST_PG_URL';

  say(`pipeline: streamlines run --replay (${thousands(lineCount)} ticks) --speed max...`);
  const pipeline = await measurePipeline(replay, lineCount, join(dir, 'data'));
  result.pipelineTicksPerSec = pipeline.ticksPerSec;
  result.pipelineVsParse = Number((pipeline.ticksPerSec / parseTicksPerSec).toFixed(4));
  result.pipelineMs = Math.round(pipeline.ms);
  result.pipelineAccepted = pipeline.accepted;
  // CPU of the CLI per million lines, all threads and per thread: the figure a busy machine disturbs least.
  result.pipelineCpuSecondsPerMillion = Number(((pipeline.cpuSeconds / lineCount) * 1e6).toFixed(2));
  result.pipelineCpuSecondsByThread = pipeline.cpuSecondsByThread;
  result.rssStartMb = Number(pipeline.rssStartMb.toFixed(1));
  result.rssHalfMb = Number(pipeline.rssHalfMb.toFixed(1));
  result.rssEndMb = Number(pipeline.rssEndMb.toFixed(1));
  result.rssPeakMb = Number(pipeline.rssPeakMb.toFixed(1));
  say(
    `pipeline: ${rate(pipeline.ticksPerSec)} (${(pipeline.ms / 1000).toFixed(1)} s, ${thousands(pipeline.accepted)} accepted), ${vsParse(pipeline.ticksPerSec)}`,
  );
  table.push([
    'embedded pipeline, replay to store',
    `${rate(pipeline.ticksPerSec)} (${vsParse(pipeline.ticksPerSec)})`,
    '>= 250,000 ticks/s and >= 50 % of parse',
  ]);
  table.push([
    'CLI RSS: listening / halfway / drained / peak',
    `${mb(pipeline.rssStartMb)} / ${mb(pipeline.rssHalfMb)} / ${mb(pipeline.rssEndMb)} / ${mb(pipeline.rssPeakMb)}`,
    'flat over a long replay',
  ]);
  await rm(join(dir, 'data'), { recursive: true, force: true });
  await rm(replay, { force: true });

  if (size.distributed) {
    // The WebSocket stage then runs on a broker the replay has warmed, as a deployed one is (a JVM
    // started for it is still compiling during the measurement). Without one (in CI the helper
    // throws) each stage finds its own or reports the skip.
    const broker = await findOrStartKafka().catch(() => undefined);
    sharedKafka = broker === undefined || 'skip' in broker ? undefined : broker;
    say(
      `distributed: ingest -> Kafka -> 2 process -> PostgreSQL -> serve, ${thousands(size.distributedTicks)} ticks...`,
    );
    const distributed = await measureDistributed({
      lines: size.distributedTicks,
      processors: 2,
      partitions: 3,
      kafka: sharedKafka,
    });
    if ('skip' in distributed) skipped.distributed = distributed.skip;
    else {
      result.distributedTicksPerSec = distributed.ticksPerSec;
      result.distributedMs = distributed.ms;
      result.distributedAccepted = distributed.accepted;
      if (distributed.ingestTicksPerSec !== undefined) {
        result.distributedIngestTicksPerSec = distributed.ingestTicksPerSec;
        result.distributedIngestMs = distributed.ingestMs;
      }
      result.distributedCpu = distributed.cpu;
      // Every role and every server this bench started (Kafka, Redis, PostgreSQL), per tick.
      result.distributedCpuUsPerTick = distributed.cpuUsPerTick;
      say(
        `distributed: ${rate(distributed.ticksPerSec)} (${(distributed.ms / 1000).toFixed(1)} s, ${thousands(distributed.accepted)} accepted); ingest into Kafka ${distributed.ingestTicksPerSec === undefined ? 'not seen' : rate(distributed.ingestTicksPerSec)}`,
      );
      table.push([
        `distributed: ingest -> Kafka -> 2 process -> PostgreSQL (${thousands(distributed.accepted)} accepted)`,
        rate(distributed.ticksPerSec),
        '',
      ]);
      if (distributed.ingestTicksPerSec !== undefined) {
        table.push([
          'distributed: ingest alone into Kafka (3 partitions)',
          rate(distributed.ingestTicksPerSec),
          '',
        ]);
      }
    }
    say(
      `distributed WebSocket latency: ${thousands(WS_TICKS_PER_SECOND)} ticks/s, ${SYMBOLS.length} clients on serve...`,
    );
    const distributedWs = await measureDistributedWsLatency({
      ticksPerSecond: WS_TICKS_PER_SECOND,
      symbols: SYMBOLS.length,
      processors: 2,
      partitions: 3,
      warmupMs: size.wsWarmupMs,
      measureMs: size.wsMeasureMs,
      kafka: sharedKafka,
    });
    if ('skip' in distributedWs) skipped.distributedWs = distributedWs.skip;
    else {
      result.distributedWsLatencyP50Ms = distributedWs.p50Ms;
      result.distributedWsLatencyP99Ms = distributedWs.p99Ms;
      result.distributedWsDeliveredPerSec = distributedWs.deliveredPerSec;
      // Where the ticks went and where the time went: what explains the latency on a quiet run.
      result.distributedWsFlow = {
        ...distributedWs.flow,
        meanLatencyMs: distributedWs.meanLatencyMs,
        over50MsPct: distributedWs.over50MsPct,
        cpu: distributedWs.cpu,
      };
      table.push(['distributed: tick -> WebSocket p99 (Redis, serve)', ms(distributedWs.p99Ms), '']);
    }
  } else
    skipped.distributed = 'quick mode without STREAMLINES_TEST_KAFKA_BROKERS, _PG_URL and _REDIS_URL all set';

  say(
    `WebSocket latency: ${thousands(WS_TICKS_PER_SECOND)} ticks/s, ${SYMBOLS.length} clients, ${size.wsMeasureMs / 1000} s...`,
  );
  const ws = await measureWsLatency({
    dir,
    symbols: SYMBOLS,
    ticksPerSecond: WS_TICKS_PER_SECOND,
    warmupMs: size.wsWarmupMs,
    measureMs: size.wsMeasureMs,
  });
  result.wsLatencyP50Ms = ws.p50Ms;
  result.wsLatencyP99Ms = ws.p99Ms;
  result.wsLatencyMaxMs = ws.maxMs;
  result.wsDeliveredPerSec = ws.deliveredPerSec;
  result.wsSamples = ws.samples;
  say(
    `WebSocket: p50 ${ms(ws.p50Ms)}, p99 ${ms(ws.p99Ms)}, max ${ms(ws.maxMs)}, ${rate(ws.deliveredPerSec)} delivered`,
  );
  table.push([
    `tick to WebSocket client (${rate(ws.deliveredPerSec)} delivered)`,
    `p50 ${ms(ws.p50Ms)}, p99 ${ms(ws.p99Ms)}, max ${ms(ws.maxMs)}`,
    'p99 <= 20 ms',
  ]);

  say(`a live market of 1 000 ticks/s over ${SYMBOLS.length} symbols, ${size.idleMeasureMs / 1000} s...`);
  const idle = await measureIdleCpu({
    dir,
    symbols: SYMBOLS,
    ticksPerSecond: 1_000,
    warmupMs: size.idleWarmupMs,
    measureMs: size.idleMeasureMs,
  });
  result.idleCpuPctAt1kTicks = idle.cpuPct;
  result.idleRssAt1kTicksMb = idle.rssMb;
  say(`1 000 ticks/s: ${idle.cpuPct} % of a core, RSS ${mb(idle.rssMb)}`);
  table.push([
    'run at 1 000 ticks/s, 100 symbols: CPU, RSS',
    `${idle.cpuPct} % of a core, ${mb(idle.rssMb)}`,
    '<= 10 %',
  ]);

  const rest = await measureRestCandles({
    requests: size.restRequests,
    perSymbol: size.restCandlesPerSymbol,
  });
  result.restCandlesP50Ms = Number(rest.p50Ms.toFixed(3));
  result.restCandlesP99Ms = Number(rest.p99Ms.toFixed(3));
  result.restCandlesStoreP50Ms = Number(rest.storeP50Ms.toFixed(3));
  result.restCandlesStoreP99Ms = Number(rest.storeP99Ms.toFixed(3));
  result.restDayCandlesP50Ms = Number(rest.dayP50Ms.toFixed(3));
  result.restDayCandlesP99Ms = Number(rest.dayP99Ms.toFixed(3));
  say(`REST 1 000 candles: p50 ${ms(rest.p50Ms)}, p99 ${ms(rest.p99Ms)}`);
  table.push([
    `REST 1,000 candles (store of ${thousands(rest.candles)})`,
    `p50 ${ms(rest.p50Ms)}, p99 ${ms(rest.p99Ms)} (store p99 ${ms(rest.storeP99Ms)})`,
    'p99 <= 10 ms',
  ]);
  table.push(['REST a day of 1m candles (1,440)', `p50 ${ms(rest.dayP50Ms)}, p99 ${ms(rest.dayP99Ms)}`, '']);
} finally {
  await sharedKafka?.stop();
  await rm(dir, { recursive: true, force: true });
}

const output = {
  ticks,
  quick,
  ...result,
  skipped,
  machine: {
    cpus: machine.cpus,
    cpuModel: machine.cpuModel,
    totalMemoryMb: machine.totalMemoryMb,
    platform: machine.platform,
    loadAverageStart: machine.loadAverage,
    loadAverageEnd: machineInfo().loadAverage,
  },
  node: machine.node,
  date: machine.date,
  durationS: Number(((performance.now() - startedAt) / 1000).toFixed(1)),
};
if (values.json) {
  process.stdout.write(`${JSON.stringify(output)}\n`);
} else {
  const widths = [0, 1, 2].map((column) =>
    Math.max(...[['stage', 'result', 'target (docs/design.md)'], ...table].map((row) => row[column]!.length)),
  );
  const row = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  say('');
  say(row(['stage', 'result', 'target (docs/design.md)']));
  say(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
  for (const cells of table) say(row(cells));
  say('');
  say(
    `${machine.cpus} x ${machine.cpuModel}, ${thousands(machine.totalMemoryMb)} MB, node ${machine.node}, ` +
      `${machine.date}, load ${output.machine.loadAverageStart.join(' ')} -> ${output.machine.loadAverageEnd.join(' ')}, ${output.durationS} s`,
  );
  for (const [stage, reason] of Object.entries(skipped)) say(`skipped ${stage}: ${reason}`);
}

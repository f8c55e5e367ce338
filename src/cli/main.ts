/**
 * The `streamlines` command line (docs/design.md, Interfaces): `run` starts every stage in one process.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { configReferenceMarkdown } from '../config/config-reference.ts';
import { configJsonSchemaText } from '../config/json-schema.ts';
import { ConfigError, loadConfig, loadConfigWithOverrides } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { HealthRegistry } from '../core/health.ts';
import { feedNames } from '../feeds/registry.ts';
import { DataDirLockedError } from '../pipeline/data-dir-lock.ts';
import {
  checkRoleConfig,
  createProcessRole,
  IngestRole,
  openServeRole,
  RoleConfigError,
} from '../pipeline/distributed.ts';
import { EmbeddedPipeline } from '../pipeline/embedded-pipeline.ts';
import { watchPauses } from '../pipeline/pause-watch.ts';
import {
  buildRoleServer,
  IngestReadiness,
  listenRoleServer,
  ProcessReadiness,
  type RoleServerOptions,
  watchRoleHealth,
} from '../pipeline/role-server.ts';
import { PipelineMetrics } from '../serve/metrics/pipeline-metrics.ts';
import { IngestMetrics, ProcessMetrics } from '../serve/metrics/role-metrics.ts';
import { buildServer } from '../serve/server.ts';
import { ArchiveUsageError, runArchiveCommand } from './archive.ts';
import { ArgsError, nearest, parseCommandLine } from './args.ts';
import { BackfillUsageError, runBackfill } from './backfill.ts';
import { localUrl, openCliSession } from './cli-session.ts';
import { ImportUsageError, runImportCommand } from './import.ts';
import { KeysUsageError, runKeysCommand } from './keys.ts';
import { createServerLogger } from './log-output.ts';
import { npmAncestorPid, watchProcess } from './parent-watch.ts';
import { ProgressLine } from './progress.ts';
import { runSqlCommand, SqlUsageError } from './sql.ts';

const USAGE = `Usage: streamlines <command> [options]

Commands:
  run        all stages in one process (feeds, ingest, log, process, store, server)
  ingest     distributed: feeds -> validate, dedup -> Kafka (buffers to disk while Kafka is away)
  process    distributed: Kafka -> processing -> PostgreSQL; start several, they share the partitions
  serve      distributed: REST, WebSocket, GraphQL and the dashboard over PostgreSQL and Redis
  backfill   load a provider's trade history for a time range
  keys       create, list or revoke API keys (also while the server runs)
  config     config check FILE: validate a config (with STREAMLINES_* overrides) and exit;
             config schema: print the config's JSON Schema
             config docs: print the config reference (docs/configuration.md)
  sql        SQL over the lake and the store
  import     load history files (NDJSON, Binance trade dumps) into the store and the lake
  archive    distributed: move final days from PostgreSQL to the Parquet lake
  help       this text

Every command takes --help, e.g. "streamlines run --help".

The distributed roles read the same config; it must name log.type "kafka" and (process, serve)
store.type "postgres", and cache.type "redis" for live data across processes. See docs/distributed.md.
`;

const COMMON_OPTIONS = `  --config FILE     YAML or JSON config (every key optional; default: built-in defaults)
  --data-dir DIR    where the log, the store and the lock file live (default ./data)`;

const REPLAY_OPTIONS = `  --replay FILE     replay an NDJSON file of ticks instead of the configured feeds
  --speed N|max     replay speed: N times real time by event time, or max (default max)`;

/** The help of each server command, printed by `streamlines COMMAND --help`. */
const COMMAND_USAGE = {
  run: `Usage: streamlines run [options]

All stages in one process: feeds, ingest, log, process, store, and the server with the dashboard.
What "npm start" runs (with --config config/default.yaml).

Options:
${COMMON_OPTIONS}
  --port N          HTTP port (default 8080; 0 picks a free port and prints it)
  --host HOST       address to listen on (default localhost)
${REPLAY_OPTIONS}
`,
  ingest: `Usage: streamlines ingest --config FILE [options]

Distributed: reads the configured feeds, validates and deduplicates, appends to Kafka (buffering
to disk while Kafka is away). The config must set log.type "kafka". See docs/distributed.md.

Options:
${COMMON_OPTIONS}
  --port N          serve /health, /ready and /metrics on this port (none without it)
  --host HOST       address of those (default localhost)
${REPLAY_OPTIONS}
`,
  process: `Usage: streamlines process --config FILE [options]

Distributed: Kafka -> moving averages, candles, indicators, alerts -> PostgreSQL. Start several;
they share the partitions. The config must set log.type "kafka" and store.type "postgres".

Options:
${COMMON_OPTIONS}
  --port N          serve /health, /ready and /metrics on this port (none without it)
  --host HOST       address of those (default localhost)
`,
  serve: `Usage: streamlines serve --config FILE [options]

Distributed: REST, WebSocket, GraphQL and the dashboard over PostgreSQL (and Redis for live data).

Options:
${COMMON_OPTIONS}
  --port N          HTTP port (default 8080; 0 picks a free port and prints it)
  --host HOST       address to listen on (default localhost)
`,
} as const;

type ServerCommand = keyof typeof COMMAND_USAGE;
const COMMANDS = [
  'run',
  'ingest',
  'process',
  'serve',
  'backfill',
  'keys',
  'config',
  'sql',
  'import',
  'archive',
  'help',
];

/**
 * `config check FILE` validates and prints a summary (exit 2 with the problems); `config schema` prints the
 * JSON Schema, `config docs` the config reference.
 */
async function runConfigCommand(argv: string[]): Promise<void> {
  const [sub, file, ...rest] = argv;
  if (sub === 'schema' && file === undefined) {
    process.stdout.write(configJsonSchemaText());
    return;
  }
  if (sub === 'docs' && file === undefined) {
    process.stdout.write(configReferenceMarkdown());
    return;
  }
  if (sub !== 'check' || file === undefined || rest.length > 0) {
    throw new UsageError(
      'usage: streamlines config check FILE | streamlines config schema | streamlines config docs',
    );
  }
  const { config, overrides } = await loadConfigWithOverrides(file);
  const feeds = feedNames(config.feeds).join(', ');
  process.stdout.write(
    `${file}: ok (feeds: ${feeds}; log: ${config.log.type}; store: ${config.store.type}; cache: ${config.cache.type})\n`,
  );
  for (const { variable, path } of overrides) process.stdout.write(`  ${path.join('.')} from ${variable}\n`);
}

/** A failure the user can fix: printed without a stack trace, exit code 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

export async function main(argv: string[]): Promise<void> {
  const command = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : undefined;
  const rest = argv.slice(1);
  if (command === 'config') {
    await runConfigCommand(rest);
    return;
  }
  if (command === 'backfill') {
    await runBackfill(rest).catch((error: unknown) => {
      throw error instanceof BackfillUsageError ? new UsageError(error.message) : error;
    });
    return;
  }
  if (command === 'sql') {
    await runSqlCommand(rest).catch((error: unknown) => {
      throw error instanceof SqlUsageError ? new UsageError(error.message) : error;
    });
    return;
  }
  if (command === 'import') {
    await runImportCommand(rest).catch((error: unknown) => {
      throw error instanceof ImportUsageError || (error as Error).name === 'ImportFileError'
        ? new UsageError((error as Error).message)
        : error;
    });
    return;
  }
  if (command === 'archive') {
    await runArchiveCommand(rest).catch((error: unknown) => {
      throw error instanceof ArchiveUsageError ? new UsageError(error.message) : error;
    });
    return;
  }
  if (command === 'keys') {
    await runKeysCommand(rest).catch((error: unknown) => {
      throw error instanceof KeysUsageError ? new UsageError(error.message) : error;
    });
    return;
  }
  if (command === undefined || command === 'help') {
    const { values } = parseCommandLine('streamlines', command === undefined ? argv : rest, {
      version: { type: 'boolean', short: 'v' },
    });
    process.stdout.write(values.version ? `streamlines ${await packageVersion()}\n` : USAGE);
    return;
  }
  if (!(command in COMMAND_USAGE)) {
    const suggestion = nearest(command, COMMANDS);
    throw new UsageError(
      `unknown command "${command}"${suggestion === undefined ? '' : `: did you mean "${suggestion}"?`}\n\n${USAGE}`,
    );
  }
  const role = command as ServerCommand;
  const { values } = parseCommandLine(`streamlines ${role}`, rest, {
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    // Parsed for process and serve too, so the refusal below can say where a replay goes.
    replay: { type: 'string' },
    speed: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(COMMAND_USAGE[role]);
    return;
  }
  if ((role === 'process' || role === 'serve') && values.replay !== undefined) {
    throw new UsageError(`"${role}" takes no --replay (give it to "ingest")`);
  }

  const config = await loadConfig(values.config);
  const dataDir = resolve(values['data-dir'] ?? './data');
  applyOverrides(config, values);
  if (values.replay !== undefined) {
    const file = await stat(values.replay).catch(() => undefined);
    if (!file?.isFile()) throw new UsageError(`--replay: no such file: ${values.replay}`);
  }
  if (role !== 'run') checkRoleConfig(config, role);
  watchNpm();
  // ingest and process serve /health, /ready and /metrics only when given --port.
  const ops = values.port === undefined ? undefined : { host: config.server.host, port: config.server.port };
  if (role === 'ingest') await runIngest(config, dataDir, ops);
  else if (role === 'process') await runProcess(config, dataDir, ops);
  else if (role === 'serve') await runServe(config, dataDir);
  else await run(config, dataDir);
}

async function packageVersion(): Promise<string> {
  const manifest = await readFile(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

function applyOverrides(config: Config, values: Record<string, string | boolean | undefined>): void {
  if (typeof values.port === 'string') {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new UsageError(`--port must be an integer from 0 to 65535, got "${values.port}"`);
    }
    config.server.port = port;
  }
  if (typeof values.host === 'string') config.server.host = values.host;
  if (values.speed !== undefined && values.replay === undefined)
    throw new UsageError('--speed needs --replay FILE');
  if (typeof values.replay === 'string') {
    const speed = parseSpeed(values.speed);
    config.feeds = [{ type: 'replay', path: resolve(values.replay), speed, source: 'replay' }];
  }
}

function parseSpeed(value: string | boolean | undefined): number | 'max' {
  if (value === undefined || value === 'max') return 'max';
  const speed = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(speed) || speed <= 0) {
    throw new UsageError(`--speed must be a positive number or "max", got "${String(value)}"`);
  }
  return speed;
}

/** Under `npx`, exits when npm is killed (its children would otherwise outlive it). */
function watchNpm(): void {
  const npmPid = npmAncestorPid();
  if (npmPid === undefined) return;
  watchProcess(npmPid, () => {
    process.stderr.write(`npm (pid ${npmPid}) is gone: stopping at once, as if killed with it\n`);
    process.exit(1);
  });
}

/** Runs `stop` once on SIGINT or SIGTERM, then exits 0. */
function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handle = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: stopping\n`);
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void handle('SIGINT'));
  process.on('SIGTERM', () => void handle('SIGTERM'));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A role's health registry: each fault on stderr once when it begins and once when it ends, and a
 * pause of the whole process (SIGSTOP) once.
 */
function roleHealth(role: 'ingest' | 'process'): HealthRegistry {
  const health = new HealthRegistry({
    log: (event) =>
      process.stderr.write(
        `${role}: ${event.message}${event.code === undefined ? '' : ` [${event.code}]`}\n`,
      ),
  });
  watchPauses(health);
  return health;
}

/** Where `ingest` and `process` serve /health, /ready and /metrics; none without --port. */
interface OpsAddress {
  host: string;
  port: number;
}

/**
 * Starts a role's ops endpoint before the role itself, so a start that waits (Kafka or the database
 * away) is visible; prints the address scripts read. Returns the function that closes it.
 */
async function startOps(
  role: 'ingest' | 'process',
  ops: OpsAddress | undefined,
  options: RoleServerOptions,
): Promise<() => Promise<void>> {
  if (!ops) return async () => {};
  const app = await buildRoleServer(options);
  const url = await listenRoleServer(app, ops.host, ops.port).catch(async (error: unknown) => {
    await app.close();
    throw explainListenError(error, ops.host, ops.port);
  });
  process.stdout.write(`Streamlines ${role} metrics on ${url}\n`);
  return () => app.close();
}

async function runIngest(config: Config, dataDir: string, ops?: OpsAddress): Promise<void> {
  const ingest = new IngestRole({
    config,
    dataDir,
    onFeedError: (feed, error) => process.stderr.write(`feed ${feed.name} failed: ${errorText(error)}\n`),
    onProgress: (message) => process.stderr.write(`ingest: ${message}\n`),
  });
  const readiness = new IngestReadiness(ingest);
  const health = roleHealth('ingest');
  const stopHealth = watchRoleHealth(readiness, health);
  const metrics = new IngestMetrics({
    feeds: () => ingest.feedStatuses(),
    spool: () => ingest.log.stats(),
    health: () => health.entries(),
  });
  const closeOps = await startOps('ingest', ops, { metrics, readiness });
  await ingest.start().catch(async (error: unknown) => {
    await closeOps();
    throw error;
  });
  readiness.markStarted();
  const names = ingest.feeds.map((feed) => feed.name).join(', ');
  process.stdout.write(
    `Streamlines ingest started (feeds: ${names}) -> Kafka ${config.log.type === 'kafka' ? config.log.brokers.join(',') : ''}\n`,
  );
  let wasEnded = false;
  // A Kafka outage is logged by the health watch above (once when it begins, once when it ends).
  const watch = setInterval(() => {
    const spooling = ingest.log.stats().spoolBytes > 0;
    if (!wasEnded && ingest.ended() && !spooling) {
      wasEnded = true;
      process.stderr.write('ingest: every feed has ended and is in the log\n');
    }
  }, 500);
  watch.unref();
  onSignals(async () => {
    clearInterval(watch);
    stopHealth();
    await closeOps();
    await ingest.stop();
  });
}

async function runProcess(config: Config, dataDir: string, ops?: OpsAddress): Promise<void> {
  const metrics = new ProcessMetrics();
  const health = roleHealth('process');
  const processor = createProcessRole({
    config,
    dataDir,
    metrics: metrics.batch,
    health,
    onEvent: (message) => process.stderr.write(`process: ${message}\n`),
  });
  const readiness = new ProcessReadiness(processor.health);
  const stopHealth = watchRoleHealth(readiness, health);
  metrics.bind({ partitions: () => processor.role.partitions(), health: () => health.entries() });
  const closeOps = await startOps('process', ops, { metrics, readiness });
  await processor.start().catch(async (error: unknown) => {
    await closeOps();
    throw error;
  });
  readiness.markStarted();
  process.stdout.write(
    `Streamlines process started (partitions owned: ${processor.role.owned().join(', ') || 'none yet'})\n`,
  );
  onSignals(async () => {
    stopHealth();
    await closeOps();
    await processor.stop();
  });
}

async function runServe(config: Config, dataDir: string): Promise<void> {
  const logger = createServerLogger(config.server.logLevel);
  const serve = await openServeRole({
    config,
    dataDir,
    onHealthEvent: (event) => logger[event.level]({ health: event }, event.message),
  });
  const app = await buildServer({ store: serve.store, view: serve.view, config: config.server, logger });
  await listen(app, config).catch(async (error: unknown) => {
    await app.close();
    await serve.close();
    throw error;
  });
  onSignals(async () => {
    await app.close();
    await serve.close();
  });
}

/**
 * A listen failure a user can fix (the port taken, a privileged port, an unknown host) as a UsageError
 * that says what to do; anything else unchanged.
 */
export function explainListenError(error: unknown, host: string, port: number): unknown {
  const code = (error as { code?: string }).code;
  const where = `${host}:${port}`;
  if (code === 'EADDRINUSE') {
    return new UsageError(
      `port ${port} is already in use on ${host} (another Streamlines, or another server?).\n` +
        'Stop it, or choose another port: --port N, or --port 0 to pick a free one (it is printed).',
    );
  }
  if (code === 'EACCES') {
    return new UsageError(
      `not allowed to listen on ${where}: ports below 1024 need privileges; use --port N`,
    );
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new UsageError(`cannot listen on ${where}: no such local address (${code}); check --host`);
  }
  return error;
}

/** Listens and prints the address scripts read from stdout; resolves with a URL this machine can reach. */
async function listen(app: Awaited<ReturnType<typeof buildServer>>, config: Config): Promise<string> {
  await app.listen({ port: config.server.port, host: config.server.host }).catch((error: unknown) => {
    throw explainListenError(error, config.server.host, config.server.port);
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const shownHost = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  process.stdout.write(`Streamlines listening on http://${shownHost}:${port}\n`);
  return localUrl(config.server.host, port);
}

async function run(config: Config, dataDir: string): Promise<void> {
  // One metrics object shared by the pipeline (batch latencies, store write time) and the server.
  const metrics = new PipelineMetrics();
  // On stderr: stdout carries the listening address that scripts read.
  const logger = createServerLogger(config.server.logLevel);
  const pipeline = new EmbeddedPipeline({
    config,
    dataDir,
    metrics: metrics.batch,
    onHealthEvent: (event) => logger[event.level]({ health: event }, event.message),
    onFeedError: (feed, error) => {
      process.stderr.write(
        `feed ${feed.name} failed: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    },
  });
  await pipeline.start();
  const app = await buildServer({
    store: pipeline.store,
    view: pipeline,
    control: pipeline,
    ...(pipeline.lake ? { warehouse: { warehouse: pipeline.lake, ...config.lake.query } } : {}),
    metrics,
    config: config.server,
    logger,
  });
  const url = await listen(app, config).catch(async (error: unknown) => {
    // Stopped cleanly, so the data dir is unlocked and nothing is half-written.
    await app.close();
    await pipeline.stop();
    throw error;
  });
  // `streamlines keys` and `sql` work while this runs (it holds the data dir): see cli-session.ts.
  const closeCliSession = await openCliSession(pipeline.store, dataDir, url);

  const progress = trackReplay(pipeline);
  onSignals(async () => {
    progress?.finish();
    await closeCliSession();
    await app.close();
    await pipeline.stop();
  });
}

/** Shows replay progress on a terminal until the pipeline is drained. */
function trackReplay(pipeline: EmbeddedPipeline): ProgressLine | undefined {
  const replay = pipeline.feeds.find((feed) => feed.bounded && feed.progress);
  if (!replay?.progress || !process.stderr.isTTY) return undefined;
  const startedAt = Date.now();
  const startCount = pipeline.stats().processedOffset;
  const progress = new ProgressLine({
    read: () => {
      const stats = pipeline.stats();
      const seconds = Math.max(0.001, (Date.now() - startedAt) / 1000);
      const rate = Math.round((stats.processedOffset - startCount) / seconds);
      const { done, total } = replay.progress!();
      const state = stats.drained ? 'drained' : 'replaying';
      return {
        done,
        total,
        text: `${state}: ${stats.accepted.toLocaleString()} accepted, ${rate.toLocaleString()} entries/s`,
      };
    },
  });
  const poll = setInterval(() => {
    if (pipeline.stats().drained) {
      clearInterval(poll);
      progress.finish();
    }
  }, 250);
  poll.unref();
  return progress;
}

/** Runs the CLI and turns errors a user can fix into a message and exit code 2. */
export async function runCli(argv: string[]): Promise<void> {
  try {
    await main(argv);
  } catch (error) {
    if (
      error instanceof UsageError ||
      error instanceof ArgsError ||
      error instanceof ConfigError ||
      error instanceof DataDirLockedError ||
      error instanceof RoleConfigError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`streamlines: ${(error as Error).message}\n`);
      process.exit(2);
    }
    process.stderr.write(
      `streamlines: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  }
}

if (import.meta.main) await runCli(process.argv.slice(2));

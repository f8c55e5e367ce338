/**
 * How tests reach a Kafka broker: `STREAMLINES_TEST_KAFKA_BROKERS` (comma-separated host:port) when set,
 * otherwise a throwaway single-node KRaft broker started here with `scripts/kafka/start.sh` (Apache
 * Kafka jars from Maven Central, fetched by `scripts/kafka/fetch.sh` when missing and `mvn` is there).
 * Outside CI a missing broker skips loudly; in CI (`CI=true`) it fails, so a broken image cannot pass.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startOrSkip, stopChild } from './server-process.ts';

const run = promisify(execFile);

const SCRIPTS = path.resolve(import.meta.dirname, '../../scripts/kafka');
const STARTUP_TIMEOUT_MS = 90_000;

/** A broker the tests may use; `stop()` shuts down what this module started (nothing otherwise). */
export interface TestKafka {
  brokers: string[];
  /** True when this process started the broker (and `stop` kills it and removes its data). */
  started: boolean;
  stop: () => Promise<void>;
}

/** Why there is no broker, to print when a suite skips. */
export type NoKafka = { skip: string };

/** Finds or starts a broker. Resolves to `{skip}` outside CI when none can be had; throws in CI. */
export async function findOrStartKafka(): Promise<TestKafka | NoKafka> {
  const fromEnv = process.env.STREAMLINES_TEST_KAFKA_BROKERS;
  if (fromEnv !== undefined && fromEnv !== '') {
    return {
      brokers: fromEnv.split(',').map((broker) => broker.trim()),
      started: false,
      stop: async () => {},
    };
  }
  return startOrSkip(
    'Kafka',
    'no Kafka broker for tests: set STREAMLINES_TEST_KAFKA_BROKERS, or install Java 17+ and Maven (scripts/kafka/fetch.sh)',
    async () => {
      await ensureJars();
      return startBroker();
    },
  );
}

async function ensureJars(): Promise<void> {
  const jars = path.join(SCRIPTS, 'jars');
  const names = existsSync(jars) ? await readdir(jars) : [];
  if (names.some((name) => name.startsWith('kafka_2.13-'))) return;
  console.warn(
    `kafka test support: broker jars missing, fetching them from Maven Central (${SCRIPTS}/fetch.sh)`,
  );
  await run(path.join(SCRIPTS, 'fetch.sh'), [], { timeout: 600_000 });
}

/** `scripts/kafka/start.sh` on these ports with its data in `dir` (stderr piped, for failure messages). */
function spawnBroker(dir: string, port: number, controllerPort: number): ChildProcess {
  return spawn(path.join(SCRIPTS, 'start.sh'), [], {
    env: {
      ...process.env,
      KAFKA_DIR: dir,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      KAFKA_HEAP: '384m',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

async function startBroker(): Promise<TestKafka> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-kafka-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const child = spawnBroker(dir, port, controllerPort);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const stop = () => stopBroker(child, dir);
  try {
    await waitUntilStarted(child, path.join(dir, 'server.log'), () => stderr);
  } catch (error) {
    await stop();
    throw error;
  }
  return { brokers: [`127.0.0.1:${port}`], started: true, stop };
}

/** The broker logs this line once both its controller and broker roles serve requests. */
async function waitUntilStarted(child: ChildProcess, logFile: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`kafka broker exited with ${child.exitCode}: ${stderr()}`);
    }
    const log = await readFile(logFile, 'utf8').catch(() => '');
    if (log.includes('Kafka Server started')) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`kafka broker did not start within ${STARTUP_TIMEOUT_MS} ms: ${stderr()}`);
}

async function stopBroker(child: ChildProcess, dir: string): Promise<void> {
  await stopChild(child, 15_000);
  await rm(dir, { recursive: true, force: true });
}

/** A broker this process owns and may stop and start again on the same port and data dir. */
export interface RestartableKafka {
  brokers: string[];
  /** Stops the broker (SIGTERM, a clean shutdown) and keeps its data. */
  stopBroker: () => Promise<void>;
  /** Starts the broker again on the same port and data dir; resolves once it serves requests. */
  startBroker: () => Promise<void>;
  /** Stops the broker if running and removes its data. */
  destroy: () => Promise<void>;
}

/**
 * Starts a broker of its own (never the `STREAMLINES_TEST_KAFKA_BROKERS` one, which a test must not stop),
 * for outage tests. Resolves to `{skip}` outside CI when none can be started; throws in CI.
 */
export async function startRestartableKafka(): Promise<RestartableKafka | NoKafka> {
  return startOrSkip(
    'Kafka',
    'no Kafka broker to stop and restart: install Java 17+ and Maven (scripts/kafka/fetch.sh)',
    async () => {
      await ensureJars();
      const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-kafka-'));
      const port = await freePort();
      const controllerPort = await freePort();
      const logFile = path.join(dir, 'server.log');
      let child: ChildProcess | undefined;
      const startBroker = async () => {
        if (child !== undefined && child.exitCode === null && child.signalCode === null) return;
        // server.log is appended to across restarts: wait for one more start line than it holds now.
        const startsBefore = countStarts(await readFile(logFile, 'utf8').catch(() => ''));
        const started = spawnBroker(dir, port, controllerPort);
        child = started;
        let stderr = '';
        started.stderr?.on('data', (chunk: Buffer) => {
          stderr = (stderr + chunk.toString()).slice(-4_000);
        });
        const deadline = Date.now() + STARTUP_TIMEOUT_MS;
        while (Date.now() < deadline) {
          if (started.exitCode !== null)
            throw new Error(`kafka broker exited with ${started.exitCode}: ${stderr}`);
          if (countStarts(await readFile(logFile, 'utf8').catch(() => '')) > startsBefore) return;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        throw new Error(`kafka broker did not start within ${STARTUP_TIMEOUT_MS} ms: ${stderr}`);
      };
      const stopBroker = async () => {
        if (child !== undefined) await stopChild(child, 15_000);
      };
      const destroy = async () => {
        await stopBroker();
        await rm(dir, { recursive: true, force: true });
      };
      try {
        await startBroker();
      } catch (error) {
        await destroy();
        throw error;
      }
      return { brokers: [`127.0.0.1:${port}`], stopBroker, startBroker, destroy };
    },
  );
}

function countStarts(log: string): number {
  return log.split('Kafka Server started').length - 1;
}

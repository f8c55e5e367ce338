/**
 * A throwaway single-node Apache Cassandra for the cassandra sink, started with
 * `scripts/cassandra/start.sh` from the Maven Central jars (`scripts/cassandra/fetch.sh` fetches them
 * when missing and `mvn` is there), on Java 17 with Cassandra's own jvm17 flags.
 * `STREAMLINES_TEST_CASSANDRA` (host:port) points at a running node instead (never stopped).
 * Outside CI a node that cannot start skips loudly; in CI (`CI=true`) it fails.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startOrSkip, stopChild } from './server-process.ts';

const run = promisify(execFile);
const SCRIPTS = path.resolve(import.meta.dirname, '../../scripts/cassandra');
/** Seen at about 35 s on an idle 2-core machine; a busy one needs more. */
const STARTUP_TIMEOUT_MS = 240_000;
const READY_LINE = 'Starting listening for CQL clients';

export interface TestCassandra {
  /** host:port of the CQL native transport. */
  contactPoint: string;
  /** Stops the node (SIGTERM) and keeps its data; a no-op for a node from the environment. */
  stopServer: () => Promise<void>;
  /** Starts it again on the same ports and data; resolves once it serves CQL. */
  startServer: () => Promise<void>;
  /** Stops it and removes its data. */
  destroy: () => Promise<void>;
}

export type NoCassandra = { skip: string };

export async function findOrStartCassandra(): Promise<TestCassandra | NoCassandra> {
  const fromEnv = process.env.STREAMLINES_TEST_CASSANDRA;
  if (fromEnv) {
    const noop = async () => {};
    return { contactPoint: fromEnv, stopServer: noop, startServer: noop, destroy: noop };
  }
  return startOrSkip(
    'Cassandra',
    'no Cassandra for tests: set STREAMLINES_TEST_CASSANDRA, or install Java 17 and Maven (scripts/cassandra/fetch.sh)',
    startCassandra,
  );
}

/** Starts a node of its own (never the environment's), to stop and start in outage tests. */
export async function startRestartableCassandra(): Promise<TestCassandra | NoCassandra> {
  return startOrSkip(
    'Cassandra',
    'no Cassandra to stop and restart: install Java 17 and Maven',
    startCassandra,
  );
}

async function ensureJars(): Promise<void> {
  const jars = path.join(SCRIPTS, 'jars');
  const names = existsSync(jars) ? await readdir(jars) : [];
  if (names.some((name) => name.startsWith('cassandra-all-'))) return;
  console.warn(
    `cassandra test support: jars missing, fetching them from Maven Central (${SCRIPTS}/fetch.sh)`,
  );
  await run(path.join(SCRIPTS, 'fetch.sh'), [], { timeout: 600_000 });
}

async function startCassandra(): Promise<TestCassandra> {
  await ensureJars();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-cassandra-'));
  const port = await freePort();
  const storagePort = await freePort();
  const logFile = path.join(dir, 'system.log');
  let child: ChildProcess | undefined;
  const startServer = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return;
    // system.log is appended to across restarts: wait for one more ready line than it holds now.
    const before = countReady(await readFile(logFile, 'utf8').catch(() => ''));
    const started = spawn(path.join(SCRIPTS, 'start.sh'), [], {
      env: {
        ...process.env,
        CASSANDRA_DIR: dir,
        CASSANDRA_PORT: String(port),
        CASSANDRA_STORAGE_PORT: String(storagePort),
        CASSANDRA_HEAP: '512m',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = started;
    let stderr = '';
    started.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (started.exitCode !== null) throw new Error(`cassandra exited with ${started.exitCode}: ${stderr}`);
      if (countReady(await readFile(logFile, 'utf8').catch(() => '')) > before) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`cassandra did not start within ${STARTUP_TIMEOUT_MS} ms: ${stderr}`);
  };
  const stopServer = async () => {
    if (child) await stopChild(child, 30_000);
  };
  const destroy = async () => {
    await stopServer();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await startServer();
  } catch (error) {
    await destroy();
    throw error;
  }
  return { contactPoint: `127.0.0.1:${port}`, stopServer, startServer, destroy };
}

function countReady(log: string): number {
  return log.split(READY_LINE).length - 1;
}

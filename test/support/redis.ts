/**
 * How tests reach a Redis server: `STREAMLINES_TEST_REDIS_URL` when set, otherwise a throwaway
 * `redis-server` (Debian package `redis-server`) started here on a free 127.0.0.1 port, with no
 * persistence, in a temp dir. Outside CI a missing binary skips loudly; in CI (`CI=true`) it fails,
 * so a broken CI image cannot pass by skipping.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, type NoServer, startOrSkip, stopChild, type TestService } from './server-process.ts';

/**
 * A Redis server the tests may use. Its `outage` stops it (SIGTERM) and starts it again on the same
 * port; it keeps no data, like a Redis restarted without persistence.
 */
export type TestRedis = TestService;

export type NoRedis = NoServer;

const READY_TIMEOUT_MS = 10_000;

/** Finds or starts a server. Resolves to `{skip}` outside CI when none can be had; throws in CI. */
export async function findOrStartRedis(): Promise<TestRedis | NoRedis> {
  const fromEnv = process.env.STREAMLINES_TEST_REDIS_URL;
  if (fromEnv !== undefined && fromEnv !== '') return { url: fromEnv, started: false, stop: async () => {} };
  return startOrSkip(
    'Redis',
    'no Redis for tests: set STREAMLINES_TEST_REDIS_URL or apt-get install redis-server',
    startRedis,
  );
}

/** Starts `redis-server` and resolves once it logs that it accepts connections. */
async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = await spawnRedis(port, dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    started: true,
    stop: async () => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
    outage: async (downMs) => {
      await stopChild(child);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      child = await spawnRedis(port, dir);
    },
  };
}

/** One `redis-server` on `port`, ready; killed when it does not get ready. */
async function spawnRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    await waitUntilReady(child);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return child;
}

function waitUntilReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => finish(new Error(`redis-server not ready after ${READY_TIMEOUT_MS} ms:\n${output}`)),
      READY_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) finish();
    };
    const onError = (error: Error) => finish(error);
    const onExit = (code: number | null) => finish(new Error(`redis-server exited with ${code}:\n${output}`));
    function finish(error?: Error) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
      // Keep draining its output so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      if (error) reject(error);
      else resolve();
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}

/**
 * What the throwaway test servers (PostgreSQL, Redis, Kafka, InfluxDB, Cassandra) have in common: a free
 * port to start on, the skip-outside-CI / fail-in-CI rule when none can be started, starting a child and
 * waiting until it serves, and stopping it.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { waitUntil } from './wait.ts';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('could not pick a free port');
  return address.port;
}

/**
 * Runs `start`; when it fails, throws in CI (`CI=true`, so a broken image cannot pass by skipping) and
 * otherwise warns loudly and resolves to `{skip}` with `reason` and the failure.
 */
export async function startOrSkip<T>(
  label: string,
  reason: string,
  start: () => Promise<T>,
): Promise<T | { skip: string }> {
  try {
    return await start();
  } catch (error) {
    const full = `${reason} (${error instanceof Error ? error.message : String(error)})`;
    if (process.env.CI === 'true') throw new Error(full, { cause: error });
    console.warn(`SKIPPING ${label} tests: ${full}`);
    return { skip: full };
  }
}

/** SIGTERMs `child` unless it has exited and waits for its exit; SIGKILLs it after `killAfterMs` if given. */
export async function stopChild(child: ChildProcess, killAfterMs?: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}

/** What a test may do with a server it started: stop and start it on the same ports and data, remove it. */
/** Why there is no server, to print when a suite skips. */
export type NoServer = { skip: string };

/** A server the tests may use at `url`; `stop()` shuts down what this module started (nothing otherwise). */
export interface TestService {
  url: string;
  /** True when this process started the server (and `stop` ends it and removes what it kept). */
  started: boolean;
  stop: () => Promise<void>;
  /** Only on a server started here: takes it down for `downMs`, then starts it again on the same port. */
  outage?: (downMs: number) => Promise<void>;
}

export interface RestartableServer {
  /** Stops the server (SIGTERM) and keeps its data; a no-op for a server from the environment. */
  stopServer: () => Promise<void>;
  /** Starts it again on the same ports and data; resolves once it serves. */
  startServer: () => Promise<void>;
  /** Stops it and removes its data. */
  destroy: () => Promise<void>;
}

/** A server in a child process that a test may stop and start again on the same ports and data. */
export interface ServerChild {
  /** Starts it unless it runs; resolves once it serves. */
  start: () => Promise<void>;
  /** Stops it (SIGTERM, SIGKILL after the grace) and keeps its data. */
  stop: () => Promise<void>;
  /** Stops it and removes its data directory. */
  destroy: () => Promise<void>;
  /** Sends a signal to the running child (SIGSTOP / SIGCONT to freeze and thaw it). */
  signal: (name: NodeJS.Signals) => void;
}

export interface ServerChildOptions {
  /** Its name in messages. */
  name: string;
  /** Its data directory, which `destroy` removes. */
  dir: string;
  /** Spawns it, with stderr piped (its tail goes into failure messages). */
  spawn: () => ChildProcess;
  /**
   * Called just before each spawn; returns the check that it serves. Arming first lets a check tell
   * this start from an earlier one (e.g. one more "started" line in a log kept across restarts).
   */
  arm: () => Promise<() => Promise<boolean>>;
  startupTimeoutMs: number;
  pollMs: number;
  /** How long a stop waits after SIGTERM before it SIGKILLs. */
  killAfterMs: number;
}

/**
 * Starts a server child and waits until it serves; a failed first start removes its data and throws
 * with the tail of its stderr, as does a child that exits or cannot be spawned while starting.
 */
export async function startServerChild(options: ServerChildOptions): Promise<ServerChild> {
  const { name, dir } = options;
  let child: ChildProcess | undefined;
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const start = async () => {
    if (running()) return;
    const serves = await options.arm();
    const started = options.spawn();
    child = started;
    let stderr = '';
    let spawnError: Error | undefined;
    started.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    started.once('error', (error) => {
      spawnError = error;
    });
    await waitUntil(
      async () => {
        if (spawnError !== undefined) throw new Error(`${name} could not start: ${spawnError.message}`);
        if (started.exitCode !== null) throw new Error(`${name} exited with ${started.exitCode}: ${stderr}`);
        return serves();
      },
      () => `${name} to serve: ${stderr}`,
      options.startupTimeoutMs,
      options.pollMs,
    );
  };
  const stop = async () => {
    if (child !== undefined) await stopChild(child, options.killAfterMs);
  };
  const destroy = async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await start();
  } catch (error) {
    await destroy();
    throw error;
  }
  return { start, stop, destroy, signal: (signal) => void child?.kill(signal) };
}

/**
 * An `arm` for {@link startServerChild} that waits for `line` to appear once more in `file` than it
 * does now: the servers append to one log across restarts.
 */
export function logLineAppears(file: string, line: string): () => Promise<() => Promise<boolean>> {
  const count = async () => (await readFile(file, 'utf8').catch(() => '')).split(line).length - 1;
  return async () => {
    const before = await count();
    return async () => (await count()) > before;
  };
}

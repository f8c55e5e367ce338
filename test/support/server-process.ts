/**
 * What the throwaway test servers (PostgreSQL, Redis, Kafka) have in common: a free port to start on, the
 * skip-outside-CI / fail-in-CI rule when none can be started, and stopping the child process.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

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

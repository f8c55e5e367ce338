/** The one wait-until helper of the tests: polls a condition, fails with what it waited for. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a wait was for, for its timeout message; a function is called only then, to show the last state. */
export type WaitingFor = string | (() => string);

/**
 * Polls `probe` (sync or async) every `intervalMs` until it returns something other than `undefined`,
 * and resolves with that; fails after `timeoutMs` naming `what`. 10 s by default: only a failure waits
 * that long, and a loaded CI machine needs the room. An error the probe throws fails the wait at once.
 */
export async function waitForValue<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: WaitingFor,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await sleep(intervalMs);
  }
}

/** Polls `predicate` (sync or async) until it holds, as {@link waitForValue} does. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: WaitingFor,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<void> {
  await waitForValue(async () => ((await predicate()) ? true : undefined), what, timeoutMs, intervalMs);
}

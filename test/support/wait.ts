/** The one wait-until helper of the tests: polls a condition, fails with what it waited for. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `predicate` (sync or async) every 5 ms until it holds, or fails after `timeoutMs` naming
 * `what`. 10 s by default: only a failure waits that long, and a loaded CI machine needs the room.
 */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

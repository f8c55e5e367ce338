/**
 * Time as the connection manager sees it: the wall clock and one-shot timers. Injected so tests can drive
 * backoff, watchdogs and heartbeats without waiting (test/fakes/manual-clock.ts).
 */

/** A scheduled callback that can be cancelled. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Runs `callback` once, `ms` from now. */
  schedule(ms: number, callback: () => void): Timer;
}

/** The real clock: `Date.now` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, callback) {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Runs `callback` every `ms` on `clock` until the returned timer is cancelled. */
export function scheduleEvery(clock: Clock, ms: number, callback: () => void): Timer {
  let timer: Timer;
  let cancelled = false;
  const tick = (): void => {
    if (cancelled) return;
    timer = clock.schedule(ms, tick);
    callback();
  };
  timer = clock.schedule(ms, tick);
  return {
    cancel: () => {
      cancelled = true;
      timer.cancel();
    },
  };
}

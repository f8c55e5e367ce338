/** A `Clock` that moves only when a test says so: timers fire, in time order, during `advance`. */
import type { Clock, Timer } from '../../src/feeds/connection/clock.ts';

interface Pending {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #pending: Pending[] = [];

  constructor(startMs = 1_800_000_000_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  schedule(ms: number, callback: () => void): Timer {
    const pending: Pending = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      callback,
      cancelled: false,
    };
    this.#pending.push(pending);
    return {
      cancel: () => {
        pending.cancelled = true;
      },
    };
  }

  /** Delays of the timers still due, from now, soonest first. */
  pendingDelays(): number[] {
    return this.#pending
      .filter((timer) => !timer.cancelled)
      .map((timer) => timer.at - this.#now)
      .sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer that falls due (timers they schedule included). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      this.#pending = this.#pending.filter((timer) => !timer.cancelled);
      let next: Pending | undefined;
      for (const timer of this.#pending) {
        if (
          timer.at <= target &&
          (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))
        )
          next = timer;
      }
      if (!next) break;
      this.#pending.splice(this.#pending.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
    }
    this.#now = target;
  }
}

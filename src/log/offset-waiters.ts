/**
 * The `waitFor` machinery shared by the log implementations: callers park on (topic, partition,
 * offset) and are woken by the append that moves the end offset past it, by their timeout, or by close.
 * Event driven, so an idle consumer costs one timer and no CPU.
 */

interface Waiter {
  offset: number;
  resolve: (arrived: boolean) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Parked `waitFor` calls, keyed by topic and partition. */
export class OffsetWaiters {
  readonly #byPartition = new Map<string, Waiter[]>();

  /** Resolves true when `notify` reports an end offset above `offset`, false after `timeoutMs`. */
  wait(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    const key = waiterKey(topic, partition);
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        offset,
        resolve,
        timer: setTimeout(
          () => {
            this.#remove(key, waiter);
            resolve(false);
          },
          Math.max(0, timeoutMs),
        ),
      };
      const list = this.#byPartition.get(key);
      if (list === undefined) this.#byPartition.set(key, [waiter]);
      else list.push(waiter);
    });
  }

  /** Wakes the waiters of a partition whose offset is now below `endOffset`. */
  notify(topic: string, partition: number, endOffset: number): void {
    if (this.#byPartition.size === 0) return;
    const key = waiterKey(topic, partition);
    const list = this.#byPartition.get(key);
    if (list === undefined) return;
    const waiting: Waiter[] = [];
    for (const waiter of list) {
      if (endOffset > waiter.offset) {
        clearTimeout(waiter.timer);
        waiter.resolve(true);
      } else {
        waiting.push(waiter);
      }
    }
    if (waiting.length === 0) this.#byPartition.delete(key);
    else this.#byPartition.set(key, waiting);
  }

  /** Resolves every waiter false (the log is closing). */
  closeAll(): void {
    for (const list of this.#byPartition.values()) {
      for (const waiter of list) {
        clearTimeout(waiter.timer);
        waiter.resolve(false);
      }
    }
    this.#byPartition.clear();
  }

  #remove(key: string, waiter: Waiter): void {
    const list = this.#byPartition.get(key);
    if (list === undefined) return;
    const index = list.indexOf(waiter);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.#byPartition.delete(key);
  }
}

function waiterKey(topic: string, partition: number): string {
  return `${partition}\u0000${topic}`;
}

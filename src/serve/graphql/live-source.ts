/**
 * The live stream as GraphQL subscriptions consume it: one bounded queue per subscription, keyed
 * by the pipeline's channel. The source listens to the pipeline only while someone is subscribed,
 * and a message on a channel nobody watches costs one map lookup. Mercurius pulls the next message
 * only once the previous one was written to the socket, so a slow client fills its own queue and
 * then loses new messages (counted) instead of making the pipeline wait or memory grow.
 */
import { liveValue, type PipelineView } from '../../core/pipeline-view.ts';

export const DEFAULT_MAX_QUEUED_MESSAGES = 1_024;

/** Counters for metrics and diagnosis of slow subscribers. */
export interface LiveSourceStats {
  /** Open subscriptions, and the channels they watch. */
  subscriptions: number;
  channels: number;
  /** Messages handed to a subscription, and dropped because its queue was full. */
  queued: number;
  dropped: number;
}

/** One subscription: an async iterator over the messages of a channel that pass its filter. */
export class LiveQueue implements AsyncIterableIterator<unknown> {
  readonly channel: string;
  /** Messages lost because the queue was full. */
  dropped = 0;
  readonly #accept: ((data: unknown) => boolean) | undefined;
  readonly #onClose: (queue: LiveQueue) => void;
  // A ring buffer: push and shift in O(1) without per-message allocation beyond the message.
  readonly #items: unknown[];
  #head = 0;
  #size = 0;
  #waiting: ((result: IteratorResult<unknown>) => void) | undefined;
  #closed = false;

  constructor(
    channel: string,
    capacity: number,
    accept: ((data: unknown) => boolean) | undefined,
    onClose: (queue: LiveQueue) => void,
  ) {
    this.channel = channel;
    this.#items = new Array(capacity);
    this.#accept = accept;
    this.#onClose = onClose;
  }

  /** Messages waiting to be sent. */
  get size(): number {
    return this.#size;
  }

  /** Offers a message: queued (or handed to a waiting reader), dropped (queue full) or skipped (filter). */
  push(data: unknown): 'queued' | 'dropped' | 'skipped' {
    if (this.#closed || (this.#accept !== undefined && !this.#accept(data))) return 'skipped';
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: data, done: false });
      return 'queued';
    }
    const capacity = this.#items.length;
    if (this.#size === capacity) {
      this.dropped++;
      return 'dropped';
    }
    this.#items[(this.#head + this.#size) % capacity] = data;
    this.#size++;
    return 'queued';
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.#size > 0) {
      const value = this.#items[this.#head];
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#items.length;
      this.#size--;
      return Promise.resolve({ value, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  /** Ends the subscription (the client stopped it or disconnected). */
  return(): Promise<IteratorResult<unknown>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Stops delivering, forgets what is queued and ends a pending `next`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#items.fill(undefined);
    this.#size = 0;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
    this.#onClose(this);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<unknown> {
    return this;
  }
}

/** Channel -> subscriptions, fed by `view.onLive` while at least one subscription is open. */
export class LiveSource {
  readonly #view: PipelineView;
  readonly #capacity: number;
  readonly #channels = new Map<string, Set<LiveQueue>>();
  #subscriptions = 0;
  #queued = 0;
  #dropped = 0;
  #stopLive: (() => void) | undefined;

  constructor(view: PipelineView, options: { maxQueuedMessages?: number } = {}) {
    const capacity = options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`maxQueuedMessages must be a positive integer, got ${String(capacity)}`);
    }
    this.#view = view;
    this.#capacity = capacity;
  }

  /** Opens a subscription to a canonical channel (`ticks:SYM`, `candles:SYM:INTERVAL`, `alerts`). */
  subscribe(channel: string, accept?: (data: unknown) => boolean): LiveQueue {
    const queue = new LiveQueue(channel, this.#capacity, accept, this.#remove);
    let queues = this.#channels.get(channel);
    if (queues === undefined) {
      queues = new Set();
      this.#channels.set(channel, queues);
    }
    queues.add(queue);
    this.#subscriptions++;
    this.#stopLive ??= this.#view.onLive(this.#dispatch);
    return queue;
  }

  stats(): LiveSourceStats {
    return {
      subscriptions: this.#subscriptions,
      channels: this.#channels.size,
      queued: this.#queued,
      dropped: this.#dropped,
    };
  }

  /** Ends every subscription (the server is closing). */
  close(): void {
    for (const queues of [...this.#channels.values()]) for (const queue of [...queues]) queue.close();
  }

  readonly #dispatch = (channel: string, data: unknown): void => {
    const queues = this.#channels.get(channel);
    if (queues === undefined) return;
    const value = liveValue(data);
    for (const queue of queues) {
      const outcome = queue.push(value);
      if (outcome === 'queued') this.#queued++;
      else if (outcome === 'dropped') this.#dropped++;
    }
  };

  readonly #remove = (queue: LiveQueue): void => {
    const queues = this.#channels.get(queue.channel);
    if (queues === undefined || !queues.delete(queue)) return;
    this.#subscriptions--;
    if (queues.size === 0) this.#channels.delete(queue.channel);
    if (this.#subscriptions === 0) {
      // Nobody listens: the pipeline stops calling us at all.
      this.#stopLive?.();
      this.#stopLive = undefined;
    }
  };
}

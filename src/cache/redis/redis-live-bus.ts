/**
 * The Redis LiveBus: pub/sub on one channel, `PREFIX live`. Messages published in the same turn of
 * the event loop (a processed batch) travel as one JSON array, `[{channel, data}, ...]`: one
 * PUBLISH and one JSON.parse per batch instead of per tick. Every subscriber receives everything,
 * as every `serve` process's WebSocket hub needs every channel its clients may ask for.
 */
import type { LiveListener } from '../../core/pipeline-view.ts';
import type { LiveBus, LiveMessage } from '../live-bus.ts';
import {
  closeClient,
  createRedisClient,
  type RedisClient,
  type RedisConnectionOptions,
} from './redis-connection.ts';

export interface RedisLiveBusOptions extends RedisConnectionOptions {
  /** Prefix of the pub/sub channel, e.g. `streamlines:`. */
  keyPrefix: string;
  /** Most messages in one PUBLISH; larger batches are split, in order. */
  maxMessagesPerPublish?: number;
}

export class RedisLiveBus implements LiveBus {
  readonly #options: RedisLiveBusOptions;
  readonly #channel: string;
  readonly #maxPerPublish: number;
  readonly #publisher: RedisClient;
  #subscriber: RedisClient | undefined;
  /** Resolves once the subscriber connection is subscribed; shared by concurrent `subscribe` calls. */
  #subscribed: Promise<void> | undefined;
  readonly #listeners = new Set<LiveListener>();
  #pending: LiveMessage[] = [];
  #flushScheduled = false;
  /** PUBLISH calls still in flight, so `close` can wait for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #publishErrors = 0;
  #receiveErrors = 0;

  constructor(options: RedisLiveBusOptions) {
    this.#options = options;
    this.#channel = `${options.keyPrefix}live`;
    this.#maxPerPublish = options.maxMessagesPerPublish ?? 2_000;
    this.#publisher = createRedisClient(options);
  }

  get publishErrors(): number {
    return this.#publishErrors;
  }

  /** Messages received that were not a JSON array of `{channel, data}` (someone else published them). */
  get receiveErrors(): number {
    return this.#receiveErrors;
  }

  async open(): Promise<void> {
    await this.#publisher.connect();
  }

  publish(channel: string, data: unknown): void {
    this.#pending.push({ channel, data });
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // A microtask runs after the synchronous loop that publishes a whole batch, and before any I/O.
    queueMicrotask(() => this.#flush());
  }

  async subscribe(listener: LiveListener): Promise<() => void> {
    const entry: LiveListener = (channel, data) => listener(channel, data);
    this.#listeners.add(entry);
    try {
      await this.#ensureSubscriber();
    } catch (error) {
      this.#listeners.delete(entry);
      throw error;
    }
    return () => {
      this.#listeners.delete(entry);
    };
  }

  async close(): Promise<void> {
    this.#flush();
    await Promise.allSettled([...this.#inFlight]);
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#subscribed = undefined;
    this.#listeners.clear();
    if (subscriber) await closeClient(subscriber);
    await closeClient(this.#publisher);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    for (let start = 0; start < pending.length; start += this.#maxPerPublish) {
      const chunk =
        start === 0 && pending.length <= this.#maxPerPublish
          ? pending
          : pending.slice(start, start + this.#maxPerPublish);
      let payload: string;
      try {
        payload = JSON.stringify(chunk);
      } catch {
        // Data that cannot be JSON (a cycle, a BigInt) is the publisher's bug; count it, keep going.
        this.#publishErrors += chunk.length;
        continue;
      }
      const sent = this.#publisher.publish(this.#channel, payload).then(
        () => undefined,
        () => {
          this.#publishErrors += chunk.length;
        },
      );
      this.#inFlight.add(sent);
      void sent.finally(() => this.#inFlight.delete(sent));
    }
  }

  #ensureSubscriber(): Promise<void> {
    this.#subscribed ??= this.#startSubscriber();
    return this.#subscribed;
  }

  async #startSubscriber(): Promise<void> {
    const subscriber = createRedisClient(this.#options);
    this.#subscriber = subscriber;
    try {
      await subscriber.connect();
      await subscriber.subscribe(this.#channel, (message: string) => this.#receive(message));
    } catch (error) {
      this.#subscriber = undefined;
      this.#subscribed = undefined;
      if (subscriber.isOpen) await subscriber.close().catch(() => undefined);
      throw error;
    }
  }

  #receive(message: string): void {
    let batch: unknown;
    try {
      batch = JSON.parse(message);
    } catch {
      this.#receiveErrors++;
      return;
    }
    if (!Array.isArray(batch)) {
      this.#receiveErrors++;
      return;
    }
    for (const item of batch as LiveMessage[]) {
      if (typeof item !== 'object' || item === null || typeof item.channel !== 'string') {
        this.#receiveErrors++;
        continue;
      }
      for (const listener of this.#listeners) listener(item.channel, item.data);
    }
  }
}

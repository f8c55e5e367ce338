/**
 * The Redis LiveBus: pub/sub on one channel, `PREFIX live`. Messages published in the same turn of
 * the event loop (a processed batch) travel as one PUBLISH of lines, `CHANNEL<TAB>DATA-JSON<LF>`
 * each (live channel names hold neither, and JSON text has no raw control characters). Every
 * subscriber receives everything, as every `serve` process's WebSocket hub needs every channel its
 * clients may ask for; an `encoded` subscriber gets each message's JSON text as a LiveJson, so a
 * serve process spends nothing on messages nobody watches, and sends the others as they came.
 */
import { LiveJson, type LiveListener } from '../../core/pipeline-view.ts';
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
  /** Listeners that take LiveJson (see `subscribe`). */
  readonly #encoded = new Set<LiveListener>();
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

  /** Message lines received that were not `CHANNEL<TAB>JSON` (someone else published them). */
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

  async subscribe(listener: LiveListener, options: { encoded?: boolean } = {}): Promise<() => void> {
    const entry: LiveListener = (channel, data) => listener(channel, data);
    const listeners = options.encoded ? this.#encoded : this.#listeners;
    listeners.add(entry);
    try {
      await this.#ensureSubscriber();
    } catch (error) {
      listeners.delete(entry);
      throw error;
    }
    return () => {
      listeners.delete(entry);
    };
  }

  async close(): Promise<void> {
    this.#flush();
    await Promise.allSettled([...this.#inFlight]);
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#subscribed = undefined;
    this.#listeners.clear();
    this.#encoded.clear();
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
      let payload = '';
      for (const { channel, data } of chunk) {
        let json: string | undefined;
        try {
          json = JSON.stringify(data) ?? 'null';
        } catch {
          // Data that cannot be JSON (a cycle, a BigInt) is the publisher's bug; count it, keep going.
        }
        if (json === undefined || LINE_BREAKING.test(channel)) {
          this.#publishErrors++;
          continue;
        }
        payload += `${channel}\t${json}\n`;
      }
      if (payload === '') continue;
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
    const plain = this.#listeners.size > 0;
    const encoded = this.#encoded.size > 0;
    for (let start = 0; start < message.length; ) {
      let end = message.indexOf('\n', start);
      if (end < 0) end = message.length;
      const tab = message.indexOf('\t', start);
      const line = start;
      start = end + 1;
      if (tab < 0 || tab > end) {
        this.#receiveErrors++;
        continue;
      }
      const channel = message.slice(line, tab);
      const json = message.slice(tab + 1, end);
      if (encoded) {
        const data = new LiveJson(json);
        for (const listener of this.#encoded) listener(channel, data);
      }
      if (!plain) continue;
      let data: unknown;
      try {
        data = JSON.parse(json);
      } catch {
        this.#receiveErrors++;
        continue;
      }
      for (const listener of this.#listeners) listener(channel, data);
    }
  }
}

/** A channel name with these would break the line format; live channels never have them. */
const LINE_BREAKING = /[\t\n]/;

/**
 * The live fan-out (docs/design.md, The flow): the processor publishes `{channel, data}` messages (channels
 * `ticks:SYM`, `candles:SYM:INTERVAL`, `alerts`, as WebSocket clients receive them) and every
 * subscribed `serve` process receives them. Implementations: `memory` (in process), `redis`
 * (pub/sub, across processes); both pass `conformance.ts`.
 *
 * Delivery is at most once, like Redis pub/sub: a subscriber that is disconnected misses what was
 * published meanwhile. The store is the durable record; the bus only makes it live.
 */
import type { LiveListener } from '../core/pipeline-view.ts';

/** One live message as the bus carries it. `data` must survive JSON (the Redis bus serialises it). */
export interface LiveMessage {
  channel: string;
  data: unknown;
}

export interface LiveBus {
  /** Connects; must be called before anything else. */
  open(): Promise<void>;
  /**
   * Publishes one message. Synchronous and never throws, so it can sit on the processor's hot path
   * (`ProcessRunner`'s `publish` option); a Redis failure is counted in `publishErrors`.
   */
  publish(channel: string, data: unknown): void;
  /**
   * Calls `listener` for every message published on the bus from now on, by any process, in
   * publish order per publisher. Resolves once the subscription is active, to the function that
   * removes it. With `encoded`, data that crossed a process boundary is handed over as a LiveJson
   * (its JSON text, parsed only if asked) rather than parsed for every message.
   */
  subscribe(listener: LiveListener, options?: { encoded?: boolean }): Promise<() => void>;
  /** Messages that could not be published (the Redis connection failed). */
  readonly publishErrors: number;
  /** Sends what is still buffered, then disconnects. */
  close(): Promise<void>;
}

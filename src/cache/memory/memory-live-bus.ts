/**
 * The in-process LiveBus: listeners are called synchronously inside `publish`, exactly as the
 * embedded pipeline hands messages to the WebSocket hub, so it adds no latency.
 */
import type { LiveListener } from '../../core/pipeline-view.ts';
import type { LiveBus } from '../live-bus.ts';

export class MemoryLiveBus implements LiveBus {
  readonly #listeners = new Set<LiveListener>();
  readonly publishErrors = 0;

  async open(): Promise<void> {}

  publish(channel: string, data: unknown): void {
    for (const listener of this.#listeners) listener(channel, data);
  }

  async subscribe(listener: LiveListener): Promise<() => void> {
    // A wrapper per call, so the same function subscribed twice is two subscriptions.
    const entry: LiveListener = (channel, data) => listener(channel, data);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}

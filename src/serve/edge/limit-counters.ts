/**
 * Refusals by the server's protective limits, counted by the config key of the limit that refused
 * (`graphql.maxCost`, `ws.maxConnections`...), for `streamlines_serve_limit_refusals_total{limit}`.
 */

/** Every limit that can refuse a request, connection or frame, or shed a client: its key under `server.`. */
export const LIMIT_NAMES = [
  'allowedHosts',
  'auth.maxFailedKeysPerMinute',
  'graphql.maxCost',
  'graphql.maxTokens',
  'graphql.maxResponseBytes',
  'ws.maxConnections',
  'ws.maxConnectionsPerClient',
  'ws.maxTotalQueuedBytes',
  'ws.maxSubscriptions',
  'ws.maxFrameBytes',
  'ws.maxMessagesPerSecond',
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** One counter per limit, shared by every guard of one server. */
export class LimitCounters {
  readonly #counts = Object.fromEntries(LIMIT_NAMES.map((name) => [name, 0])) as Record<LimitName, number>;

  /** One more refusal (or shed client) by `limit`. */
  count(limit: LimitName): void {
    this.#counts[limit]++;
  }

  /** The counts so far, by limit. */
  snapshot(): Readonly<Record<LimitName, number>> {
    return { ...this.#counts };
  }
}

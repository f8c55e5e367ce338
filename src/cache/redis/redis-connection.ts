/** How the Redis cache and bus connect: one place for the URL, the password and error handling. */
import { createClient } from 'redis';

export interface RedisConnectionOptions {
  /** redis://[user@]host:port[/db], without a password. */
  url: string;
  /** From REDIS_PASSWORD; never from the config file. */
  password?: string;
  /** Shown by CLIENT LIST, so an operator can tell which connection is whose. */
  clientName?: string;
  /** Called with every connection error (node-redis reconnects by itself). */
  onError?: (error: Error) => void;
  /** Told about every client made with these options, so health checks can see them all. */
  reachability?: RedisReachability;
}

/** Whether the Redis connections of one process are up, for its `/ready` (docs/operations.md, Faults). */
export class RedisReachability {
  readonly #clients = new Map<RedisClient, Error | undefined>();

  watch(client: RedisClient): void {
    this.#clients.set(client, undefined);
    client.on('error', (error: Error) => this.#clients.set(client, error));
    client.on('ready', () => this.#clients.set(client, undefined));
  }

  /** Undefined while every open connection is ready; else what is wrong, for a human. */
  problem(): string | undefined {
    let open = 0;
    let down = 0;
    let last: Error | undefined;
    // A closed client is not a fault: only open ones that are not ready (reconnecting) count.
    for (const [client, error] of this.#clients) {
      if (!client.isOpen) continue;
      open++;
      if (client.isReady) continue;
      down++;
      last = error ?? last;
    }
    if (down === 0) return undefined;
    return `${down} of ${open} connections down (${last?.message || last?.name || 'reconnecting'})`;
  }
}

/** Connection attempts before `open()` gives up on a server it never reached. */
const INITIAL_ATTEMPTS = 3;

/**
 * Creates (but does not connect) a client. Commands fail at once while Redis is unreachable rather
 * than queueing without bound: a live message or a latest price is worthless by the time Redis is
 * back.
 */
export function createRedisClient(options: RedisConnectionOptions) {
  let everReady = false;
  const client = createClient({
    url: options.url,
    ...(options.password !== undefined && options.password !== '' ? { password: options.password } : {}),
    ...(options.clientName !== undefined ? { name: options.clientName } : {}),
    disableOfflineQueue: true,
    socket: {
      // Once connected, back off to at most 2 s between attempts and never give up (Redis restarts
      // are normal). Before that, fail `open()` after a few attempts: a wrong URL should say so.
      reconnectStrategy: (retries: number, cause: Error) =>
        !everReady && retries >= INITIAL_ATTEMPTS ? cause : Math.min(50 * 2 ** retries, 2_000),
      connectTimeout: 5_000,
    },
  });
  client.once('ready', () => {
    everReady = true;
  });
  // Without a listener an `error` event would crash the process on every dropped connection.
  client.on('error', (error: Error) => options.onError?.(error));
  options.reachability?.watch(client);
  return client;
}

/** A node-redis client as `createRedisClient` makes it. */
export type RedisClient = ReturnType<typeof createRedisClient>;

/** Escapes glob characters so a key prefix matches literally in SCAN MATCH. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Closes gracefully when connected; while reconnecting there is nothing to wait for, so it stops at once. */
export async function closeClient(client: RedisClient): Promise<void> {
  if (client.isReady) await client.close();
  else if (client.isOpen) client.destroy();
}

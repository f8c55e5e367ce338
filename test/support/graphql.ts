/** Test support: a graphql-ws client over a real WebSocket that keeps what a subscription gets. */
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Json } from './serve.ts';

/** A client speaking `graphql-transport-ws` to `url` (ws://host:port/graphql). */
export function connectGraphql(url: string): Client {
  return createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
}

/** What one subscription received: `data` of each `next`, and the errors it ended with. */
export interface Collected {
  data: Json[];
  errors: Json[];
  completed: boolean;
  stop: () => void;
}

export function collect(client: Client, query: string): Collected {
  const collected: Collected = { data: [], errors: [], completed: false, stop: () => {} };
  collected.stop = client.subscribe(
    { query },
    {
      next: (result) => {
        if (result.errors !== undefined) collected.errors.push(...result.errors);
        else collected.data.push(result.data);
      },
      error: (error) => {
        collected.errors.push(...(Array.isArray(error) ? error : [error]));
      },
      complete: () => {
        collected.completed = true;
      },
    },
  );
  return collected;
}

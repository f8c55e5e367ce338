/**
 * A stand-in for `wss://ws.finnhub.io` on 127.0.0.1, for tests: checks the `token` query parameter (HTTP 401
 * on the upgrade otherwise, as a bad key would get), records `subscribe`/`unsubscribe` messages per
 * connection, and lets a test push frames, drop connections or go silent.
 */
import type { IncomingMessage } from 'node:http';
import { FakeSocketServer } from './fake-socket-server.ts';

export class FakeFinnhubServer extends FakeSocketServer {
  /** Client messages, parsed, with the connection they came on (0-based). */
  readonly received: { connection: number; message: Record<string, unknown> }[] = [];
  /** Upgrades refused for a wrong token. */
  refused = 0;

  constructor(token: string) {
    super(
      (socket, index) => {
        socket.on('message', (data) => {
          try {
            this.received.push({ connection: index, message: JSON.parse(data.toString()) });
          } catch {
            this.received.push({ connection: index, message: { unparsable: data.toString() } });
          }
        });
      },
      '',
      {
        verifyClient: (info: { req: IncomingMessage }, callback: (ok: boolean, code?: number) => void) => {
          const url = new URL(info.req.url ?? '/', 'http://localhost');
          const ok = url.searchParams.get('token') === token;
          if (!ok) this.refused += 1;
          callback(ok, 401);
        },
      },
    );
  }

  /** Symbols subscribed on a connection, in order. */
  subscriptions(connection: number): string[] {
    return this.received
      .filter((entry) => entry.connection === connection && entry.message.type === 'subscribe')
      .map((entry) => String(entry.message.symbol));
  }
}

/**
 * A local HTTP receiver for the webhook sink that can misbehave on purpose: fail (500), stall (never
 * answer), or answer 429 with Retry-After. It records every POST it accepted, with its headers, and
 * counts the ones it refused.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReceiverMode = 'ok' | 'fail' | 'stall' | 'throttle';

export interface ReceivedPost {
  headers: IncomingMessage['headers'];
  body: string;
}

export interface WebhookReceiver {
  url: string;
  /** POSTs answered 200, in arrival order. */
  received: ReceivedPost[];
  /** POSTs answered otherwise (or left hanging), by mode. */
  refused: Record<ReceiverMode, number>;
  /** How the next POSTs are answered. */
  setMode(mode: ReceiverMode): void;
  /** Fails the next `count` POSTs with `mode`, then answers ok again. */
  failNext(count: number, mode: Exclude<ReceiverMode, 'ok'>): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(
  options: { retryAfterSeconds?: number } = {},
): Promise<WebhookReceiver> {
  let mode: ReceiverMode = 'ok';
  let failures = 0;
  let failureMode: Exclude<ReceiverMode, 'ok'> = 'fail';
  const received: ReceivedPost[] = [];
  const refused: Record<ReceiverMode, number> = { ok: 0, fail: 0, stall: 0, throttle: 0 };
  const stalled = new Set<ServerResponse>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const now: ReceiverMode = failures > 0 ? failureMode : mode;
      if (failures > 0) failures--;
      if (now === 'ok') {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
      }
      refused[now]++;
      if (now === 'fail') response.writeHead(500).end('boom');
      else if (now === 'throttle')
        response.writeHead(429, { 'retry-after': String(options.retryAfterSeconds ?? 1) }).end('slow down');
      else stalled.add(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    refused,
    setMode: (next) => {
      mode = next;
    },
    failNext: (count, next) => {
      failures = count;
      failureMode = next;
    },
    close: async () => {
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

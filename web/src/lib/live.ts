/**
 * One WebSocket to /ws shared by the whole app: channels are reference-counted, resubscribed after
 * a reconnect (with backoff), and messages are handed to listeners as they arrive. Pages that draw
 * merge bursts themselves per animation frame (see frame-batch.ts).
 */

export type LiveHandler = (data: unknown) => void;

const listeners = new Map<string, Set<LiveHandler>>();
let socket: WebSocket | undefined;
let retryMs = 500;
let status: 'connecting' | 'open' | 'closed' = 'closed';
const statusListeners = new Set<(status: string) => void>();
/** Channels the server has confirmed on this connection, and who waits for a confirmation. */
const confirmed = new Set<string>();
const waiting = new Map<string, Set<() => void>>();

function setStatus(next: typeof status): void {
  status = next;
  for (const listener of statusListeners) listener(status);
}

/** Calls `listener` with the connection status now and on every change; returns the unsubscribe. */
export function onStatus(listener: (status: string) => void): () => void {
  statusListeners.add(listener);
  listener(status);
  return () => statusListeners.delete(listener);
}

function send(op: 'subscribe' | 'unsubscribe', channels: string[]): void {
  if (socket?.readyState === WebSocket.OPEN && channels.length > 0) {
    socket.send(JSON.stringify({ op, channels }));
  }
}

function connect(): void {
  if (socket) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  setStatus('connecting');
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    retryMs = 500;
    setStatus('open');
    send('subscribe', [...listeners.keys()]);
  };
  ws.onmessage = (event) => {
    let message: { channel?: string; data?: unknown; op?: string; channels?: unknown };
    try {
      message = JSON.parse(String(event.data));
    } catch {
      return;
    }
    if (message.op === 'subscribed' && Array.isArray(message.channels)) {
      for (const channel of message.channels) confirm(String(channel));
      return;
    }
    if (typeof message.channel !== 'string') return;
    const handlers = listeners.get(message.channel);
    if (handlers) for (const handler of handlers) handler(message.data);
  };
  ws.onclose = () => {
    socket = undefined;
    confirmed.clear();
    // Nothing arrives until a reconnect: whoever waits for a confirmation goes ahead without it.
    const waiters = [...waiting.values()].flatMap((set) => [...set]);
    waiting.clear();
    for (const resolve of waiters) resolve();
    setStatus('closed');
    if (listeners.size === 0) return;
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10_000);
  };
}

/** Subscribes `handler` to `channel`; returns the function that unsubscribes it. */
export function subscribe(channel: string, handler: LiveHandler): () => void {
  let handlers = listeners.get(channel);
  if (!handlers) {
    handlers = new Set();
    listeners.set(channel, handlers);
    send('subscribe', [channel]);
  }
  handlers.add(handler);
  connect();
  return () => {
    const current = listeners.get(channel);
    if (!current) return;
    current.delete(handler);
    if (current.size === 0) {
      listeners.delete(channel);
      confirmed.delete(channel);
      send('unsubscribe', [channel]);
    }
  };
}

function confirm(channel: string): void {
  if (!listeners.has(channel)) return;
  confirmed.add(channel);
  const waiters = waiting.get(channel);
  waiting.delete(channel);
  for (const resolve of waiters ?? []) resolve();
}

/**
 * Resolves once the server has confirmed `channel` (everything it publishes from then on arrives),
 * or when the connection closes, or after `timeoutMs` when the server does not answer. A page that loads history and then follows a channel
 * subscribes first and fetches after this, so no update falls between the two.
 */
export function whenSubscribed(channel: string, timeoutMs = 3_000): Promise<void> {
  if (confirmed.has(channel)) return Promise.resolve();
  return new Promise((resolve) => {
    let waiters = waiting.get(channel);
    if (!waiters) {
      waiters = new Set();
      waiting.set(channel, waiters);
    }
    const done = () => {
      clearTimeout(timer);
      waiting.get(channel)?.delete(done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    waiters.add(done);
  });
}

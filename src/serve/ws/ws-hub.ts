/**
 * The live fan-out: channel -> subscribed clients. A message on a channel nobody watches costs one
 * map lookup; otherwise it is serialised once and the same buffer goes to every subscriber. A
 * client whose socket has more than `maxQueuedBytes` waiting loses the message (counted) instead
 * of making the pipeline or the other clients wait, or, with `slowClient: 'disconnect'`, is closed
 * with 1013 so it can reconnect and start afresh. A client sending more than `maxMessagesPerSecond`
 * frames gets `rate_limited` and the frame is ignored.
 *
 * The pipeline publishes a processed batch message by message in one synchronous run. A client's
 * stream is corked at its first message and uncorked in a microtask after the run, so its messages
 * of the batch leave in one write system call instead of one each (at 20 000 ticks/s those calls
 * were a third of the main thread's busy time: docs/benchmarks.md, WebSocket latency).
 */
import { isUtf8 } from 'node:buffer';
import { LiveJson } from '../../core/pipeline-view.ts';
import { errorBody, WS_ERROR_CODES, type WsErrorCode } from '../errors.ts';
import { parseChannel } from './channels.ts';
import { checkFrame, type FrameWindow } from './frame-limiter.ts';

/** What the hub needs of a socket; `ws`'s WebSocket has it. */
export interface HubSocket {
  readonly readyState: number;
  /** Bytes accepted by `send` but not yet handed to the kernel. */
  readonly bufferedAmount: number;
  send(data: Buffer, options: { binary: boolean }): void;
  close(code: number, reason: string): void;
}

/** The byte stream under a socket: while corked, writes are gathered and leave together on uncork. */
export interface CorkableStream {
  cork(): void;
  uncork(): void;
}

/** What happens to a client whose queue is over `maxQueuedBytes`. */
export type SlowClientPolicy = 'drop' | 'disconnect';

/** Close code for a client disconnected because it read too slowly ("try again later"). */
export const SLOW_CLIENT_CLOSE_CODE = 1013;

export interface WsHubOptions {
  /** Per client: above this many queued bytes, live messages are dropped for that client. */
  maxQueuedBytes: number;
  /** Per client. */
  maxSubscriptions: number;
  /** Largest frame a client may send; larger frames are answered with `frame_too_large`. */
  maxFrameBytes: number;
  /** Per client; frames beyond this in one second are answered `rate_limited` and ignored. */
  maxMessagesPerSecond: number;
  /** `drop` (default): lose messages for a slow client; `disconnect`: close it with 1013. */
  slowClient?: SlowClientPolicy;
}

/** One connected client. */
export interface HubClient extends FrameWindow {
  readonly id: number;
  readonly socket: HubSocket;
  /** The socket's byte stream, corked while a batch of messages is sent (none: each send writes). */
  readonly stream: CorkableStream | undefined;
  /** Corked by this hub until the end of the current synchronous run. */
  corked: boolean;
  /** Bytes sent to the corked stream in this run: they wait by design, not because the client is slow. */
  corkedBytes: number;
  readonly channels: Set<string>;
  /** Live messages sent to / dropped for this client. */
  sent: number;
  dropped: number;
}

/** Counters for metrics. */
export interface WsHubStats {
  clients: number;
  /** Channels with at least one subscriber. */
  channels: number;
  subscriptions: number;
  /** Live messages the pipeline published, and how many of them had a subscriber (serialised once). */
  published: number;
  serialised: number;
  /** Live message deliveries sent, and dropped because the client was too slow. */
  sent: number;
  dropped: number;
  /** Control replies (subscribed, errors) dropped because the client was too slow. */
  repliesDropped: number;
  /** Clients closed with 1013 because they were too slow (`slowClient: 'disconnect'`). */
  disconnected: number;
  /** Errors reported to clients, by code. */
  errors: Record<WsErrorCode, number>;
}

const OPEN = 1;
const TEXT_FRAME = { binary: false } as const;

/** The fan-out hub; `publish` is the pipeline's LiveListener. */
export class WsHub {
  readonly #options: WsHubOptions;
  readonly #channels = new Map<string, Set<HubClient>>();
  readonly #clients = new Set<HubClient>();
  readonly #errors = Object.fromEntries(WS_ERROR_CODES.map((code) => [code, 0])) as Record<
    WsErrorCode,
    number
  >;
  #nextId = 1;
  #published = 0;
  #serialised = 0;
  #sent = 0;
  #dropped = 0;
  #repliesDropped = 0;
  #disconnected = 0;
  /** Clients corked during the current synchronous run, uncorked together by one microtask. */
  #corkedClients: HubClient[] = [];

  constructor(options: WsHubOptions) {
    this.#options = options;
  }

  /** Delivers one live message to the channel's subscribers. Never throws into the pipeline. */
  readonly publish = (channel: string, data: unknown): void => {
    this.#published++;
    const clients = this.#channels.get(channel);
    if (clients === undefined) return;
    let frame: Buffer;
    try {
      // Data that came serialised (from another process) is sent as it came: no parse, no stringify.
      const json = data instanceof LiveJson ? data.json : JSON.stringify(data);
      frame = Buffer.from(`{"channel":${JSON.stringify(channel)},"data":${json}}`);
    } catch {
      return;
    }
    this.#serialised++;
    const maxQueuedBytes = this.#options.maxQueuedBytes;
    for (const client of clients) {
      const socket = client.socket;
      if (socket.readyState !== OPEN) continue;
      if (socket.bufferedAmount - client.corkedBytes > maxQueuedBytes) {
        client.dropped++;
        this.#dropped++;
        if (this.#options.slowClient === 'disconnect') this.#disconnect(client);
        continue;
      }
      if (client.stream !== undefined) {
        if (!client.corked) this.#cork(client);
        client.corkedBytes += frame.length;
      }
      socket.send(frame, TEXT_FRAME);
      client.sent++;
      this.#sent++;
    }
  };

  #cork(client: HubClient): void {
    client.stream!.cork();
    client.corked = true;
    if (this.#corkedClients.push(client) === 1) queueMicrotask(this.#uncorkAll);
  }

  readonly #uncorkAll = (): void => {
    const clients = this.#corkedClients;
    this.#corkedClients = [];
    for (const client of clients) {
      client.corked = false;
      client.corkedBytes = 0;
      client.stream!.uncork();
    }
  };

  /**
   * Registers a newly connected socket; `stream` is the connection under it (the upgraded request's
   * socket), corked while a batch of live messages is written to it.
   */
  addClient(socket: HubSocket, stream?: CorkableStream): HubClient {
    const client: HubClient = {
      id: this.#nextId++,
      socket,
      stream,
      corked: false,
      corkedBytes: 0,
      channels: new Set(),
      sent: 0,
      dropped: 0,
      windowStartMs: 0,
      windowFrames: 0,
    };
    this.#clients.add(client);
    return client;
  }

  /** Forgets a closed socket and all its subscriptions. */
  removeClient(client: HubClient): void {
    for (const channel of client.channels) this.#unsubscribe(client, channel);
    this.#clients.delete(client);
  }

  /** Handles one frame from a client: subscribe / unsubscribe, or an error reply. */
  receive(client: HubClient, frame: Buffer, nowMs = Date.now()): void {
    const refusal = checkFrame(this.#options, client, frame.length, nowMs);
    if (refusal !== undefined) {
      this.#replyError(client, refusal.code, refusal.message);
      return;
    }
    // The socket does not check UTF-8 itself (so that a bad frame gets this answer, not a close).
    if (!isUtf8(frame)) {
      this.#replyError(client, 'invalid_json', 'frame is not valid UTF-8');
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(frame.toString('utf8'));
    } catch (error) {
      this.#replyError(client, 'invalid_json', `frame is not valid JSON: ${(error as Error).message}`);
      return;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      this.#replyError(client, 'invalid_message', 'expected an object {"op": ..., "channels": [...]}');
      return;
    }
    const { op, channels } = message as { op?: unknown; channels?: unknown };
    if (op !== 'subscribe' && op !== 'unsubscribe') {
      this.#replyError(
        client,
        'unknown_op',
        `unknown op ${JSON.stringify(op)?.slice(0, 100) ?? 'undefined'}; expected subscribe or unsubscribe`,
      );
      return;
    }
    if (!Array.isArray(channels)) {
      this.#replyError(client, 'invalid_message', `${op} needs "channels": an array of channel names`);
      return;
    }
    // Validate everything first so a request is applied whole or not at all.
    const names = new Set<string>();
    for (const raw of channels) {
      const parsed = parseChannel(raw);
      if (!parsed.ok) {
        this.#replyError(client, 'invalid_channel', parsed.message);
        return;
      }
      names.add(parsed.channel);
    }
    if (op === 'subscribe') {
      let added = 0;
      for (const name of names) if (!client.channels.has(name)) added++;
      if (client.channels.size + added > this.#options.maxSubscriptions) {
        this.#replyError(
          client,
          'too_many_subscriptions',
          `subscribing to ${added} more channel(s) would exceed the limit of ${this.#options.maxSubscriptions} per connection (${client.channels.size} now)`,
        );
        return;
      }
      for (const name of names) this.#subscribe(client, name);
      this.#reply(client, { op: 'subscribed', channels: [...names] });
    } else {
      for (const name of names) this.#unsubscribe(client, name);
      this.#reply(client, { op: 'unsubscribed', channels: [...names] });
    }
  }

  /** Counts and reports an error detected outside `receive` (e.g. by the socket itself). */
  countError(code: WsErrorCode): void {
    this.#errors[code]++;
  }

  stats(): WsHubStats {
    let subscriptions = 0;
    for (const client of this.#clients) subscriptions += client.channels.size;
    return {
      clients: this.#clients.size,
      channels: this.#channels.size,
      subscriptions,
      published: this.#published,
      serialised: this.#serialised,
      sent: this.#sent,
      dropped: this.#dropped,
      repliesDropped: this.#repliesDropped,
      disconnected: this.#disconnected,
      errors: { ...this.#errors },
    };
  }

  /** Per-client counters, for metrics and diagnosis of slow consumers. */
  clientStats(): { id: number; channels: string[]; sent: number; dropped: number; bufferedBytes: number }[] {
    return [...this.#clients].map((client) => ({
      id: client.id,
      channels: [...client.channels],
      sent: client.sent,
      dropped: client.dropped,
      bufferedBytes: client.socket.bufferedAmount,
    }));
  }

  #subscribe(client: HubClient, channel: string): void {
    client.channels.add(channel);
    let clients = this.#channels.get(channel);
    if (clients === undefined) {
      clients = new Set();
      this.#channels.set(channel, clients);
    }
    clients.add(client);
  }

  #unsubscribe(client: HubClient, channel: string): void {
    client.channels.delete(channel);
    const clients = this.#channels.get(channel);
    if (clients === undefined) return;
    clients.delete(client);
    // An empty set would make publish serialise for nobody.
    if (clients.size === 0) this.#channels.delete(channel);
  }

  #disconnect(client: HubClient): void {
    this.#disconnected++;
    // Forget it now rather than on 'close': the close frame waits behind the full queue.
    this.removeClient(client);
    client.socket.close(SLOW_CLIENT_CLOSE_CODE, 'too slow: the send queue is full, reconnect');
  }

  #replyError(client: HubClient, code: WsErrorCode, message: string): void {
    this.#errors[code]++;
    this.#reply(client, { op: 'error', ...errorBody(code, message) });
  }

  #reply(client: HubClient, message: object): void {
    const socket = client.socket;
    if (socket.readyState !== OPEN) return;
    // A client that does not read must not make us buffer replies without bound either.
    if (socket.bufferedAmount > this.#options.maxQueuedBytes) {
      this.#repliesDropped++;
      return;
    }
    socket.send(Buffer.from(JSON.stringify(message)), TEXT_FRAME);
  }
}

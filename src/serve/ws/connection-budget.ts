/**
 * The server-wide WebSocket budget `/ws` and `/graphql` share: how many connections may be open
 * (in all, and per API key or address), and how many bytes may wait in their send queues together.
 * Per-client queue limits alone did not bound memory: 1 000 clients that subscribe and never read
 * each filled their own queue (an outside probe took RSS from 0.76 to 1.82 GB that way). Past the
 * total, the clients with the most queued are dropped first until the rest fit.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LimitCounters } from '../edge/limit-counters.ts';
import { ERRORS, errorBody } from '../errors.ts';

export interface ConnectionBudgetOptions {
  /** Open WebSocket connections, all endpoints. */
  maxConnections: number;
  /** Open WebSocket connections per API key, or per address without one. */
  maxConnectionsPerClient: number;
  /** Bytes queued for all WebSocket clients together. */
  maxTotalQueuedBytes: number;
  /** How often the queues are summed (default 250 ms). */
  checkIntervalMs?: number;
}

/** What the budget needs of a socket; `ws`'s WebSocket has it. */
export interface BudgetSocket {
  /** Bytes accepted by `send` but not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** Drops the connection at once, freeing its queue (a close frame would wait behind it). */
  terminate(): void;
}

export interface ConnectionBudgetStats {
  /** Open connections (admitted upgrades whose socket has not closed). */
  connections: number;
  /** Bytes queued over all watched sockets at the last check. */
  queuedBytes: number;
  /** Clients dropped because the total was over budget. */
  shed: number;
}

/** Why an upgrade is refused. */
export interface AdmissionRefusal {
  code: 'server_busy' | 'too_many_connections';
  message: string;
}

/** One budget per server, shared by every WebSocket endpoint. */
export class ConnectionBudget {
  readonly #options: ConnectionBudgetOptions;
  readonly #counters: LimitCounters;
  readonly #perClient = new Map<string, number>();
  readonly #sockets = new Set<BudgetSocket>();
  readonly #timer: NodeJS.Timeout;
  #connections = 0;
  #queuedBytes = 0;
  #shed = 0;

  constructor(options: ConnectionBudgetOptions, counters: LimitCounters) {
    this.#options = options;
    this.#counters = counters;
    this.#timer = setInterval(() => this.shedOverBudget(), options.checkIntervalMs ?? 250);
    this.#timer.unref();
  }

  /**
   * Admits one more connection of `client` (`key:ID` or `ip:ADDRESS`), or says why not. An
   * admitted connection must be released exactly once, when its socket closes.
   */
  admit(client: string): AdmissionRefusal | undefined {
    if (this.#connections >= this.#options.maxConnections) {
      this.#counters.count('ws.maxConnections');
      return {
        code: 'server_busy',
        message: `the server has ${this.#connections} WebSocket connections open, its limit (server.ws.maxConnections); retry later`,
      };
    }
    const open = this.#perClient.get(client) ?? 0;
    if (open >= this.#options.maxConnectionsPerClient) {
      this.#counters.count('ws.maxConnectionsPerClient');
      return {
        code: 'too_many_connections',
        message: `${open} WebSocket connections are open from this ${client.startsWith('key:') ? 'API key' : 'address'}, the limit (server.ws.maxConnectionsPerClient); close one first`,
      };
    }
    this.#connections++;
    this.#perClient.set(client, open + 1);
    return undefined;
  }

  /** Forgets one admitted connection of `client`. */
  release(client: string): void {
    const open = this.#perClient.get(client);
    if (open === undefined) return;
    this.#connections--;
    if (open <= 1) this.#perClient.delete(client);
    else this.#perClient.set(client, open - 1);
  }

  /** Counts an open socket's queue into the total until it closes. */
  watch(socket: BudgetSocket & { once(event: 'close', listener: () => void): unknown }): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  /**
   * Sums the queues; while the total is over budget, drops the socket with the most queued. Runs
   * on a timer, and may be called directly (tests). Returns how many were dropped.
   */
  shedOverBudget(): number {
    let total = 0;
    for (const socket of this.#sockets) total += socket.bufferedAmount;
    this.#queuedBytes = total;
    if (total <= this.#options.maxTotalQueuedBytes) return 0;
    const slowestFirst = [...this.#sockets].sort((a, b) => b.bufferedAmount - a.bufferedAmount);
    let dropped = 0;
    for (const socket of slowestFirst) {
      if (total <= this.#options.maxTotalQueuedBytes) break;
      total -= socket.bufferedAmount;
      this.#sockets.delete(socket);
      socket.terminate();
      dropped++;
    }
    this.#queuedBytes = total;
    this.#shed += dropped;
    for (let i = 0; i < dropped; i++) this.#counters.count('ws.maxTotalQueuedBytes');
    return dropped;
  }

  stats(): ConnectionBudgetStats {
    return { connections: this.#connections, queuedBytes: this.#queuedBytes, shed: this.#shed };
  }

  /** Stops the timer (the server is closing). */
  close(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Answers a refused upgrade with the error's status (and `retry-after` when the server is busy),
 * then closes the socket: Node hands an upgrade's socket over entirely, so nothing else would.
 */
export function refuseUpgrade(request: FastifyRequest, reply: FastifyReply, refusal: AdmissionRefusal): void {
  reply.header('connection', 'close');
  reply.raw.once('finish', () => request.raw.socket?.end());
  if (refusal.code === 'server_busy') reply.header('retry-after', '5');
  reply.code(ERRORS[refusal.code].status).send(errorBody(refusal.code, refusal.message));
}

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { LimitCounters } from '../edge/limit-counters.ts';
import { ConnectionBudget } from './connection-budget.ts';

/** A socket whose queue the test sets, remembering whether it was dropped. */
class FakeSocket extends EventEmitter {
  bufferedAmount: number;
  terminated = false;
  constructor(bufferedAmount: number) {
    super();
    this.bufferedAmount = bufferedAmount;
  }
  terminate(): void {
    this.terminated = true;
    this.emit('close');
  }
}

function budget(options: Partial<ConstructorParameters<typeof ConnectionBudget>[0]> = {}) {
  const counters = new LimitCounters();
  const made = new ConnectionBudget(
    {
      maxConnections: 5,
      maxConnectionsPerClient: 2,
      maxTotalQueuedBytes: 1_000,
      checkIntervalMs: 60_000,
      ...options,
    },
    counters,
  );
  return { budget: made, counters };
}

test('connections are capped per client, then in all, and released one by one', () => {
  const { budget: limits, counters } = budget();
  try {
    assert.equal(limits.admit('ip:1'), undefined);
    assert.equal(limits.admit('ip:1'), undefined);
    assert.equal(limits.admit('ip:1')?.code, 'too_many_connections');
    // Another client is counted apart; the total stops everyone at 5.
    assert.equal(limits.admit('key:a'), undefined);
    assert.equal(limits.admit('key:a'), undefined);
    assert.equal(limits.admit('ip:2'), undefined);
    assert.equal(limits.admit('ip:3')?.code, 'server_busy');
    assert.equal(limits.stats().connections, 5);
    limits.release('ip:1');
    assert.equal(limits.admit('ip:1'), undefined);
    // Releasing an unknown client changes nothing.
    limits.release('ip:nobody');
    assert.equal(limits.stats().connections, 5);
    const counts = counters.snapshot();
    assert.equal(counts['ws.maxConnectionsPerClient'], 1);
    assert.equal(counts['ws.maxConnections'], 1);
  } finally {
    limits.close();
  }
});

test('over the total queue budget, the sockets with the most queued are dropped first', () => {
  const { budget: limits, counters } = budget({ maxTotalQueuedBytes: 1_000 });
  try {
    const sockets = [100, 700, 50, 400, 300].map((bytes) => new FakeSocket(bytes));
    for (const socket of sockets) limits.watch(socket);
    // 1 550 queued: dropping 700 leaves 850, under the budget; the others stay.
    assert.equal(limits.shedOverBudget(), 1);
    assert.deepEqual(
      sockets.map((socket) => socket.terminated),
      [false, true, false, false, false],
    );
    assert.deepEqual(limits.stats(), { connections: 0, queuedBytes: 850, shed: 1 });
    assert.equal(counters.snapshot()['ws.maxTotalQueuedBytes'], 1);
    // Under budget nothing happens; a closed socket no longer counts.
    assert.equal(limits.shedOverBudget(), 0);
    sockets[3]!.emit('close');
    sockets[0]!.bufferedAmount = 900;
    // 900 + 50 + 300 = 1 250: the 900 one goes.
    assert.equal(limits.shedOverBudget(), 1);
    assert.equal(sockets[0]!.terminated, true);
    assert.equal(sockets[4]!.terminated, false);
  } finally {
    limits.close();
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitUntil } from '../../test/support/wait.ts';
import { type IngestEntry, TOPIC_TICKS } from '../core/records.ts';
import type { Log } from '../log/log.ts';
import { MemoryLog } from '../log/memory/memory-log.ts';
import { ProcessRunner } from '../process/process-runner.ts';
import { DEFAULT_ANOMALY, type ProcessConfig } from '../process/processor.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import type { Store } from '../store/store.ts';
import { type PartitionLeases, ProcessRole, partitionCheckpoint } from './process-role.ts';

const CONFIG: ProcessConfig = {
  latenessMs: 10_000,
  priceRules: [],
  anomaly: { ...DEFAULT_ANOMALY, enabled: false },
};
const SYMBOLS = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF', 'GGG', 'HHH'];
const T0 = 1_700_000_000_000;

/** In-process stand-in for PostgreSQL advisory locks: what one lock table shared by members does. */
class LockTable {
  readonly holders = new Map<number, LocalLeases>();
  readonly members = new Set<LocalLeases>();
}

class LocalLeases implements PartitionLeases {
  readonly #table: LockTable;
  #dead = false;
  constructor(table: LockTable) {
    this.#table = table;
  }
  async open(): Promise<void> {
    this.#table.members.add(this);
  }
  async members(): Promise<number> {
    this.#check();
    return this.#table.members.size;
  }
  async tryAcquire(partition: number): Promise<boolean> {
    this.#check();
    const holder = this.#table.holders.get(partition);
    if (holder !== undefined && holder !== this) return false;
    this.#table.holders.set(partition, this);
    return true;
  }
  async release(partition: number): Promise<void> {
    if (this.#table.holders.get(partition) === this) this.#table.holders.delete(partition);
  }
  async close(): Promise<void> {
    this.#table.members.delete(this);
    for (const [partition, holder] of this.#table.holders)
      if (holder === this) this.#table.holders.delete(partition);
  }
  /** What a lost database session does: every lock of it goes at once, and the connection is gone. */
  vanish(): void {
    void this.close();
    this.#dead = true;
  }
  #check(): void {
    if (this.#dead) throw new Error('connection terminated');
  }
}

/** A log and a store several roles share, as Kafka and PostgreSQL are shared (open/close are no-ops per role). */
function shared(log: Log, store: Store): { log: Log; store: Store } {
  return { log: withoutLifecycle(log), store: withoutLifecycle(store) };
}

function withoutLifecycle<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property) {
      if (property === 'open' || property === 'close') return async () => {};
      const value = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}

async function appendTicks(log: Log, count: number, seqStart: number): Promise<void> {
  const records = [];
  for (let i = 0; i < count; i++) {
    const symbol = SYMBOLS[i % SYMBOLS.length]!;
    const seq = seqStart + i;
    const value: IngestEntry = {
      kind: 'tick',
      source: 't',
      symbol,
      ts: T0 + seq * 1_000,
      price: 100 + Math.sin(seq),
      size: 1,
      id: String(seq),
      receivedAt: T0,
      seq,
    };
    records.push({ key: symbol, value });
  }
  await log.append(TOPIC_TICKS, records);
}

async function committed(store: Store, partitions: number): Promise<number> {
  let sum = 0;
  for (let partition = 0; partition < partitions; partition++) {
    sum += (await store.checkpoint(partitionCheckpoint(partition)))?.offsets[partition] ?? 0;
  }
  return sum;
}

function role(log: Log, store: Store, leases: PartitionLeases): ProcessRole {
  return new ProcessRole({ ...shared(log, store), leases, config: CONFIG, rebalanceMs: 30 });
}

describe('ProcessRole', () => {
  it('two processors split the partitions; a vanished one hands its partitions to the other', async () => {
    const log = new MemoryLog({ partitions: 3 });
    const store = new MemoryStore();
    await log.open();
    await store.open();
    const table = new LockTable();
    const leasesA = new LocalLeases(table);
    const a = role(log, store, leasesA);
    await a.start();
    assert.deepEqual(a.owned(), [0, 1, 2], 'alone, it takes every partition');

    const b = role(log, store, new LocalLeases(table));
    await b.start();
    // ceil(3 / 2) = 2: A gives up its highest partition, B takes it.
    await waitUntil(() => a.owned().length === 2 && b.owned().length === 1, 'the split');
    assert.deepEqual([...a.owned(), ...b.owned()].sort(), [0, 1, 2]);

    await appendTicks(log, 3_000, 0);
    await waitUntil(async () => (await committed(store, 3)) === 3_000, 'both to commit');

    // A's database session goes while its runners still run (a zombie that was never told). B
    // takes A's partitions and continues from their checkpoints; whichever of the two commits
    // second to a partition is refused by the store's fencing and stops.
    leasesA.vanish();
    await waitUntil(() => b.owned().length === 3, 'B to take over');
    await appendTicks(log, 3_000, 3_000);
    await waitUntil(async () => (await committed(store, 3)) === 6_000, 'everything to be committed');

    // Every tick is stored exactly once, whoever processed it.
    for (const symbol of SYMBOLS) {
      const ticks = await store.ticks(symbol, { limit: 10_000 });
      assert.equal(ticks.length, 6_000 / SYMBOLS.length, symbol);
      assert.equal(new Set(ticks.map((tick) => tick.id)).size, ticks.length, `${symbol} has a tick twice`);
    }
    await a.stop();
    await b.stop();
    await log.close();
    await store.close();
  });

  it('a runner whose partition another processor continued stops instead of writing', async () => {
    const log = new MemoryLog({ partitions: 1 });
    const store = new MemoryStore();
    await log.open();
    await store.open();
    await appendTicks(log, 100, 0);
    const make = () =>
      new ProcessRunner({
        log,
        store,
        config: CONFIG,
        partitions: [0],
        checkpointName: 'processor:p0',
        fence: true,
      });
    const first = make();
    await first.open();
    const second = make();
    await second.open();
    const controller = new AbortController();
    // The second commits first: the first's commit then continues a checkpoint that moved.
    const secondRun = second.run(controller.signal);
    await waitUntil(async () => (await committed(store, 1)) === 100, 'the second to commit');
    await appendTicks(log, 10, 100);
    await assert.rejects(first.run(new AbortController().signal), { name: 'CheckpointConflictError' });
    controller.abort();
    await secondRun;
    const ticks = await store.ticks('AAA', { limit: 10_000 });
    assert.equal(new Set(ticks.map((tick) => tick.id)).size, ticks.length);
    await log.close();
    await store.close();
  });
});

describe('ProcessRole during an outage', () => {
  it('tells a round that keeps failing the same way once, and once when it works again', async () => {
    let down = false;
    let failedRounds = 0;
    const leases: PartitionLeases = {
      open: async () => {},
      members: async () => {
        if (!down) return 1;
        failedRounds++;
        throw new Error('metadata failed 9 times.');
      },
      tryAcquire: async () => true,
      release: async () => {},
      close: async () => {},
    };
    const events: string[] = [];
    const role = new ProcessRole({
      log: new MemoryLog({ partitions: 1 }),
      store: new MemoryStore(),
      leases,
      config: CONFIG,
      rebalanceMs: 5,
      onEvent: (event) => events.push(event),
    });
    await role.start();
    down = true;
    await waitUntil(() => failedRounds >= 5, 'five failed rounds');
    down = false;
    await waitUntil(() => events.length >= 3, 'the end of the failures');
    await role.stop();
    assert.ok(failedRounds >= 5, `${failedRounds} failed rounds`);
    assert.deepEqual(events.slice(0, 2), ['took partition 0', 'rebalance failed: metadata failed 9 times.']);
    const [, rounds] = /^rebalance works again after (\d+) failed rounds$/.exec(events[2] ?? '') ?? [];
    assert.ok(Number(rounds) >= 5, `the end of the failures, with their count: ${events[2]}`);
    assert.equal(events.length, 3, events.join('\n'));
  });
});

/**
 * The `process` role of the distributed mode (docs/design.md, Modes): processors that share the partitions of
 * `price-ticks`. Each partition a processor owns gets its own ProcessRunner with its own checkpoint
 * (`processor:p<N>`: processor state and offset, committed in the same store transaction as what
 * the partition produced), so a partition moves between processors without loss or double counting:
 * the new owner resumes from the partition's last commit.
 *
 * Who owns what is decided by leases (PostgreSQL advisory locks in production, see
 * PostgresPartitionLeases): every processor aims at ceil(partitions / live members), gives up its
 * surplus one partition per round and takes free partitions up to its share. A killed processor's
 * database session ends, its leases with it, and the others take its partitions within a round.
 * The store's checkpoint fencing backs the leases up: a commit that does not continue the
 * partition's stored checkpoint is refused, and that runner stops.
 */

import { sleepUnlessAborted } from '../core/abortable-sleep.ts';
import type { LiveListener } from '../core/pipeline-view.ts';
import { type Counters, TOPIC_TICKS } from '../core/records.ts';
import type { Log } from '../log/log.ts';
import type { BatchMetricsRecorder } from '../process/batch-metrics.ts';
import { ProcessRunner } from '../process/process-runner.ts';
import type { ProcessConfig } from '../process/processor.ts';
import type { Store } from '../store/store.ts';

/** The checkpoint of one partition's processor. */
export function partitionCheckpoint(partition: number): string {
  return `processor:p${partition}`;
}

/** Exclusive, crash-released ownership of partitions among the live processors. */
export interface PartitionLeases {
  open(): Promise<void>;
  /** Processors alive now, this one included. */
  members(): Promise<number>;
  tryAcquire(partition: number): Promise<boolean>;
  release(partition: number): Promise<void>;
  close(): Promise<void>;
}

/** Leases for a processor that is alone by construction (a store only one process can open). */
export class SoleLeases implements PartitionLeases {
  async open(): Promise<void> {}
  async members(): Promise<number> {
    return 1;
  }
  async tryAcquire(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface ProcessRoleOptions {
  /** The log to read `price-ticks` from (opened and closed by the role). */
  log: Log;
  /** The shared store (opened and closed by the role). */
  store: Store;
  leases: PartitionLeases;
  config: ProcessConfig;
  /**
   * A log (not yet opened) that appends the alerts of one partition: with Kafka, a producer whose
   * transactional id is the partition's, so a new owner fences the old one. Default: `log`.
   */
  alertsLog?: (partition: number) => Log;
  publish?: LiveListener;
  metrics?: BatchMetricsRecorder;
  /** How often ownership is reconsidered, ms. Default 1 000. */
  rebalanceMs?: number;
  /** Hears what happens: partitions taken and given up, runners that failed. */
  onEvent?: (message: string) => void;
  /**
   * Told, once a round, the committed offsets of the owned partitions that moved since the last
   * report (the process role reports them to a Kafka consumer group for Kafka's lag tools).
   */
  reportOffsets?: (offsets: { partition: number; offset: number }[]) => Promise<void>;
}

/** One owned partition, as `ProcessRole.partitions()` reports it. */
export interface PartitionStatus {
  partition: number;
  /** Log entries of the partition committed to the store. */
  committedOffset: number;
  /** The partition's counters as of its last commit (lifetime totals: they move with the partition). */
  counters: Counters;
  /** The last store write error while the partition's runner retries, else undefined. */
  writeError: unknown;
}

interface OwnedPartition {
  runner: ProcessRunner;
  controller: AbortController;
  done: Promise<void>;
  alertsLog: Log | undefined;
}

/** The partitions this process owns and the runners that process them. */
export class ProcessRole {
  readonly #options: ProcessRoleOptions;
  readonly #owned = new Map<number, OwnedPartition>();
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;
  /** The offsets last reported per partition (`reportOffsets`). */
  readonly #reported = new Map<number, number>();
  /** Set when the leases' connection dropped, until they are renewed. */
  #leasesLost: unknown;
  /** Steps of the round that keep failing (`rebalance`, `reporting offsets`): their error and how often. */
  readonly #failing = new Map<string, { error: string; times: number }>();

  constructor(options: ProcessRoleOptions) {
    this.#options = options;
  }

  /** Opens the log, the store and the leases, and starts taking partitions. */
  async start(): Promise<void> {
    const { log, store, leases } = this.#options;
    await log.open();
    await store.open();
    await leases.open();
    await this.#rebalance();
    this.#loop = this.#rebalanceLoop();
  }

  /** The partitions owned now, ascending. */
  owned(): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b);
  }

  /** Committed entries over the owned partitions. */
  committedOffset(): number {
    let sum = 0;
    for (const { runner } of this.#owned.values()) sum += runner.committedOffset();
    return sum;
  }

  /** Each owned partition as of its last commit, ascending, with its store write error while retrying. */
  partitions(): PartitionStatus[] {
    return this.owned().map((partition) => {
      const runner = this.#owned.get(partition)!.runner;
      return {
        partition,
        committedOffset: runner.committedOffset(),
        counters: runner.counters(),
        writeError: runner.writeError(),
      };
    });
  }

  /** Why the leases were lost, until they are renewed; undefined while they are held. */
  leasesError(): unknown {
    return this.#leasesLost;
  }

  /**
   * The leases' connection dropped (the database is down or restarted): every partition may be
   * someone else's now. The next round stops the runners and renews the leases once it can.
   */
  leasesLost(error: unknown): void {
    this.#leasesLost = error ?? new Error('partition leases lost');
    this.#event(`partition leases lost: ${message(this.#leasesLost)}`);
  }

  /** Lets every runner commit what it processed, gives up the leases and closes everything. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
    await Promise.allSettled([...this.#owned.keys()].map((partition) => this.#giveUp(partition)));
    await this.#options.leases.close();
    await this.#options.log.close();
    await this.#options.store.close();
  }

  async #rebalanceLoop(): Promise<void> {
    const signal = this.#stopping.signal;
    const every = this.#options.rebalanceMs ?? 1_000;
    while (!signal.aborted) {
      await sleepUnlessAborted(every, signal);
      if (signal.aborted) return;
      await this.#rebalance().then(
        () => this.#stepWorked('rebalance'),
        (error: unknown) => this.#stepFailed('rebalance', error),
      );
      await this.#reportOffsets().then(
        () => this.#stepWorked('reporting offsets'),
        (error: unknown) => this.#stepFailed('reporting offsets', error),
      );
    }
  }

  async #reportOffsets(): Promise<void> {
    const report = this.#options.reportOffsets;
    if (!report) return;
    const moved = this.partitions()
      .filter(({ partition, committedOffset }) => this.#reported.get(partition) !== committedOffset)
      .map(({ partition, committedOffset }) => ({ partition, offset: committedOffset }));
    if (moved.length === 0) return;
    await report(moved);
    for (const { partition, offset } of moved) this.#reported.set(partition, offset);
  }

  /** One round: give up one partition above the fair share, or take free ones up to it. */
  async #rebalance(): Promise<void> {
    const { leases, log } = this.#options;
    if (this.#leasesLost !== undefined) {
      // A runner's last commit after this point is refused by the store if another processor
      // already continued its partition (checkpoint fencing).
      await Promise.allSettled([...this.#owned.keys()].map((partition) => this.#giveUp(partition)));
      await leases.close().catch(() => {});
      await leases.open(); // throws while the database is down: the next round tries again
      this.#leasesLost = undefined;
      this.#event('partition leases renewed');
    }
    const partitions = log.partitions(TOPIC_TICKS);
    const members = Math.max(1, await leases.members());
    const share = Math.ceil(partitions / members);
    if (this.#owned.size > share) {
      const surplus = Math.max(...this.#owned.keys());
      await this.#giveUp(surplus);
      this.#event(`gave up partition ${surplus} (${members} processors share ${partitions} partitions)`);
      return;
    }
    for (let partition = 0; partition < partitions && this.#owned.size < share; partition++) {
      if (this.#stopping.signal.aborted) return;
      if (this.#owned.has(partition) || !(await leases.tryAcquire(partition))) continue;
      try {
        await this.#take(partition);
      } catch (error) {
        await leases.release(partition).catch(() => {});
        throw error;
      }
      this.#event(`took partition ${partition}`);
    }
  }

  async #take(partition: number): Promise<void> {
    const { log, store, config, publish, metrics } = this.#options;
    const alertsLog = this.#options.alertsLog?.(partition);
    if (alertsLog) await alertsLog.open();
    const runner = new ProcessRunner({
      log,
      store,
      config,
      publish,
      metrics,
      alertsLog,
      partitions: [partition],
      checkpointName: partitionCheckpoint(partition),
      fence: true,
    });
    try {
      await runner.open();
    } catch (error) {
      await alertsLog?.close();
      throw error;
    }
    const controller = new AbortController();
    const done = runner.run(controller.signal).catch(async (error: unknown) => {
      // Fenced (another processor committed to this partition) or broken: let it go; the next
      // round takes it again if it is free.
      this.#event(`partition ${partition} stopped: ${message(error)}`);
      if (this.#owned.get(partition)?.runner !== runner) return; // being given up already
      this.#owned.delete(partition);
      await alertsLog?.close();
      await this.#options.leases.release(partition).catch(() => {});
    });
    this.#owned.set(partition, { runner, controller, done, alertsLog });
  }

  /** Stops the partition's runner after its last commit, then frees the lease. */
  async #giveUp(partition: number): Promise<void> {
    const owned = this.#owned.get(partition);
    if (!owned) return;
    this.#owned.delete(partition);
    owned.controller.abort();
    await owned.done;
    await owned.alertsLog?.close();
    await this.#options.leases.release(partition).catch(() => {});
  }

  /**
   * A round's step failed. Told once per distinct error, not once a second: an outage of Kafka or
   * the database fails every round, and the role's health checks already log that fault.
   */
  #stepFailed(step: string, error: unknown): void {
    const text = message(error);
    const failing = this.#failing.get(step);
    if (failing?.error === text) {
      failing.times++;
      return;
    }
    this.#failing.set(step, { error: text, times: (failing?.times ?? 0) + 1 });
    this.#event(`${step} failed: ${text}`);
  }

  #stepWorked(step: string): void {
    const failing = this.#failing.get(step);
    if (failing === undefined) return;
    this.#failing.delete(step);
    this.#event(`${step} works again after ${failing.times} failed round${failing.times === 1 ? '' : 's'}`);
  }

  #event(text: string): void {
    this.#options.onEvent?.(text);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Positioned reads and stable offsets over kafkajs's own connection layer.
 *
 * The Log reads a partition at any offset, on demand (`read(topic, partition, from, max)`), which maps to
 * one Kafka Fetch request. kafkajs only exposes that through group consumers (subscribe, run, seek), so
 * this module drives kafkajs's internal `Cluster` and `Broker` objects, which the public clients are
 * built on. kafkajs is no longer developed and the version is pinned exactly in package.json, so these
 * internals do not move; everything that touches them is in this file, typed by the interfaces below.
 */
import type { Kafka } from 'kafkajs';

/** A record of a fetch response, as kafkajs decodes it. */
interface WireMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord?: boolean;
  batchContext?: { producerId: string; inTransaction: boolean };
}

interface WireAbortedTransaction {
  producerId: string;
  firstOffset: string;
}

interface WirePartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  lastStableOffset?: string;
  abortedTransactions?: WireAbortedTransaction[];
  messages: WireMessage[];
}

interface WireBroker {
  fetch(request: {
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: WirePartition[] }[] }>;
}

interface WireCoordinator {
  offsetCommit(request: {
    groupId: string;
    groupGenerationId: number;
    memberId: string;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<{ responses: { partitions: { partition: number; errorCode: number }[] }[] }>;
}

interface WireCluster {
  findGroupCoordinator(query: { groupId: string }): Promise<WireCoordinator>;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(query: { nodeId: string }): Promise<WireBroker>;
  fetchTopicsOffset(
    topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[],
  ): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

/** Kafka's READ_COMMITTED isolation level: only committed transactions, up to the last stable offset. */
const READ_COMMITTED = 1;
/** Bytes one fetch may return per partition; a fetch returns at least one whole batch regardless. */
const FETCH_MAX_BYTES = 1 << 20;

/** A committed data record of a fetch: control records and aborted transactions are already removed. */
export interface FetchedRecord {
  offset: number;
  key: string;
  value: Buffer | null;
}

/** What one fetch saw: the committed records, and where the next fetch continues. */
export interface FetchResult {
  records: FetchedRecord[];
  /** One past the last offset the fetch covered, including control records and aborted data. */
  next: number;
  /** The partition's last stable offset as the broker reported it (0 when it did not). */
  lastStable: number;
  /** `offset` is past the partition's end (nothing to wait for there yet). */
  outOfRange: boolean;
}

/** One connection pool to the cluster, reading with read_committed isolation. */
export class KafkaWire {
  readonly #cluster: WireCluster;
  readonly #targets = new Set<string>();

  constructor(kafka: Kafka) {
    // Kafka keeps its cluster factory under a private symbol; it wires in the client's brokers,
    // retry and logger settings.
    const symbol = Object.getOwnPropertySymbols(kafka).find(
      (candidate) => candidate.description === 'private:Kafka:createCluster',
    );
    if (symbol === undefined)
      throw new Error('kafkajs internals changed: no cluster factory (pin kafkajs 2.2.4)');
    const factory = (kafka as unknown as Record<symbol, (options: object) => WireCluster>)[symbol]!;
    this.#cluster = factory({
      isolationLevel: READ_COMMITTED,
      allowAutoTopicCreation: false,
      metadataMaxAge: 60_000,
    });
  }

  connect(): Promise<void> {
    return this.#cluster.connect();
  }

  disconnect(): Promise<void> {
    return this.#cluster.disconnect();
  }

  async #target(topic: string): Promise<void> {
    if (this.#targets.has(topic)) return;
    await this.#cluster.addTargetTopic(topic);
    this.#targets.add(topic);
  }

  /**
   * Commits offsets for a consumer group without joining it (generation -1, no member id), as a
   * reader that assigns its own partitions does. kafkajs' admin.setOffsets cannot be used for this:
   * it joins the group with a temporary consumer, and refuses while anyone else does the same.
   */
  async commitOffsets(
    groupId: string,
    topic: string,
    offsets: readonly { partition: number; offset: number }[],
  ): Promise<void> {
    const coordinator = await this.#cluster.findGroupCoordinator({ groupId });
    const { responses } = await coordinator.offsetCommit({
      groupId,
      groupGenerationId: -1,
      memberId: '',
      topics: [
        {
          topic,
          partitions: offsets.map(({ partition, offset }) => ({ partition, offset: String(offset) })),
        },
      ],
    });
    const failed = responses.flatMap((response) => response.partitions).find((p) => p.errorCode !== 0);
    if (failed)
      throw new Error(
        `kafka: committing offsets of group ${groupId} failed with error code ${failed.errorCode}`,
      );
  }

  /** The last stable offset of each listed partition (read_committed ListOffsets). */
  async lastStableOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, number>> {
    await this.#target(topic);
    const [result] = await this.#cluster.fetchTopicsOffset([
      { topic, fromBeginning: false, partitions: partitions.map((partition) => ({ partition })) },
    ]);
    return new Map((result?.partitions ?? []).map(({ partition, offset }) => [partition, Number(offset)]));
  }

  /**
   * Fetches from `offset`; the broker holds the request up to `maxWaitMs` while it has nothing at or
   * past `offset` below the last stable offset.
   */
  async fetch(topic: string, partition: number, offset: number, maxWaitMs: number): Promise<FetchResult> {
    await this.#target(topic);
    const leaders = this.#cluster.findLeaderForPartitions(topic, [partition]);
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) throw new Error(`no leader for ${topic}/${partition}`);
    const broker = await this.#cluster.findBroker({ nodeId });
    let response: Awaited<ReturnType<WireBroker['fetch']>>;
    try {
      response = await broker.fetch({
        isolationLevel: READ_COMMITTED,
        maxWaitTime: maxWaitMs,
        minBytes: maxWaitMs > 0 ? 1 : 0,
        maxBytes: FETCH_MAX_BYTES,
        topics: [
          { topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: FETCH_MAX_BYTES }] },
        ],
      });
    } catch (error) {
      if ((error as { type?: string }).type === 'OFFSET_OUT_OF_RANGE') {
        return { records: [], next: offset, lastStable: 0, outOfRange: true };
      }
      throw error;
    }
    const data = response.responses[0]?.partitions.find((candidate) => candidate.partition === partition);
    if (data === undefined) return { records: [], next: offset, lastStable: 0, outOfRange: false };
    const lastStable = Number(data.lastStableOffset ?? data.highWatermark);
    // A fetch may start at the batch holding `offset`, so earlier records are dropped here.
    const messages = data.messages.filter((message) => Number(message.offset) >= offset);
    const last = messages[messages.length - 1];
    const next = last === undefined ? offset : Number(last.offset) + 1;
    const records: FetchedRecord[] = [];
    for (const message of committed(messages, data.abortedTransactions ?? [])) {
      records.push({
        offset: Number(message.offset),
        key: message.key?.toString('utf8') ?? '',
        value: message.value,
      });
    }
    return { records, next, lastStable, outOfRange: false };
  }
}

/**
 * Drops control records and the records of aborted transactions: an aborted transaction runs from its
 * first offset to the abort marker of the same producer (the same walk as Kafka's Java consumer).
 */
function committed(
  messages: readonly WireMessage[],
  aborted: readonly WireAbortedTransaction[],
): WireMessage[] {
  const pending = [...aborted].sort((a, b) => Number(a.firstOffset) - Number(b.firstOffset));
  const abortedProducers = new Set<string>();
  const out: WireMessage[] = [];
  for (const message of messages) {
    const offset = Number(message.offset);
    while (pending.length > 0 && offset >= Number(pending[0]!.firstOffset)) {
      abortedProducers.add(pending.shift()!.producerId);
    }
    const producerId = message.batchContext?.producerId;
    const inAborted =
      message.batchContext?.inTransaction === true &&
      producerId !== undefined &&
      abortedProducers.has(producerId);
    if (message.isControlRecord) {
      // An abort marker (control key type 0) ends that producer's aborted transaction.
      if (inAborted && message.key !== null && message.key.length >= 4 && message.key.readInt16BE(2) === 0) {
        abortedProducers.delete(producerId!);
      }
      continue;
    }
    if (!inAborted) out.push(message);
  }
  return out;
}

/**
 * Positioned reads, stable offsets, topics and group offsets over @platformatic/kafka.
 *
 * The Log reads a partition at any offset, on demand (`read(topic, partition, from, max)`), which maps to
 * one Kafka Fetch request. A group consumer (subscribe, then a stream) does not fit that, so this module
 * sends the Fetch itself with the client's exported protocol API (`fetchV12`, which every broker from
 * Kafka 2.7 to 4.x serves): a sessionless fetch (session id 0, epoch -1) of one partition, on a
 * connection of the client's own pool. Everything else is the client's public API: metadata, ListOffsets
 * (read_committed), CreateTopics, and AlterConsumerGroupOffsets (an OffsetCommit that does not join the
 * group). One KafkaWire is one connection per broker: a broker answers one request per connection at a
 * time, so a long-polling wait gets a wire of its own.
 */
import {
  Admin,
  type ClusterMetadata,
  ConfigResourceTypes,
  type ConnectionOptions,
  Consumer,
  fetchV12,
  IncrementalAlterConfigOperationTypes,
} from '@platformatic/kafka';

/** Kafka's READ_COMMITTED isolation level: only committed transactions, up to the last stable offset. */
const READ_COMMITTED = 1;
/** Bytes one fetch may return per partition; a fetch returns at least one whole batch regardless. */
const FETCH_MAX_BYTES = 1 << 20;
/** Record batch attribute bits (Kafka's DefaultRecordBatch). */
const TRANSACTIONAL_BIT = 1 << 4;
const CONTROL_BIT = 1 << 5;
/** Kafka's error code for a fetch offset outside the partition's log. */
const OFFSET_OUT_OF_RANGE = 1;
/** A sessionless full fetch: no incremental fetch session (KIP-227) is created on the broker. */
const NO_SESSION_ID = 0;
const FINAL_EPOCH = -1;

/** How to reach the cluster: brokers, client id, and TLS/SASL when the cluster asks for them. */
export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  tls?: ConnectionOptions['tls'];
  sasl?: ConnectionOptions['sasl'];
}

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

/** The options every client of one log shares. */
export function clientOptions(connection: KafkaConnection) {
  return {
    clientId: connection.clientId,
    bootstrapBrokers: connection.brokers,
    retries: 8,
    retryDelay: 50,
    metadataMaxAge: 60_000,
    ...(connection.tls === undefined ? {} : { tls: connection.tls }),
    ...(connection.sasl === undefined ? {} : { sasl: connection.sasl }),
  };
}

/** One connection pool to the cluster, reading with read_committed isolation. */
export class KafkaWire {
  /** A consumer that never joins its group: used for metadata, ListOffsets and its connection pool. */
  readonly #client: Consumer;
  #admin: Admin | undefined;
  readonly #connection: KafkaConnection;

  constructor(connection: KafkaConnection) {
    this.#connection = connection;
    this.#client = new Consumer({
      ...clientOptions(connection),
      groupId: `${connection.clientId}-reader`,
      isolationLevel: READ_COMMITTED,
    });
  }

  /** Connects to the bootstrap brokers (fails when none answers). */
  async connect(): Promise<void> {
    await this.#client.metadata({ topics: [] });
  }

  async disconnect(): Promise<void> {
    await Promise.allSettled([this.#client.close(true), this.#admin?.close()]);
  }

  /** The admin client of this wire (topics and group offsets), created on first use. */
  admin(): Admin {
    this.#admin ??= new Admin(clientOptions(this.#connection));
    return this.#admin;
  }

  /** Names of the cluster's topics (internal ones left out). */
  listTopics(): Promise<string[]> {
    return this.admin().listTopics();
  }

  /** Partition counts of the listed topics that exist. */
  async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const metadata = await this.#metadata([...topics], true);
    const counts = new Map<string, number>();
    for (const topic of topics) {
      const found = metadata.topics.get(topic);
      if (found !== undefined) counts.set(topic, found.partitionsCount);
    }
    return counts;
  }

  /** Creates a topic with these topic configs; resolves false when it already existed. */
  async createTopic(
    topic: string,
    partitions: number,
    replicas: number,
    configs: { name: string; value: string }[],
  ): Promise<boolean> {
    try {
      await this.admin().createTopics({ topics: [topic], partitions, replicas, configs });
      return true;
    } catch (error) {
      if (hasProtocolError(error, 'TOPIC_ALREADY_EXISTS')) return false;
      throw error;
    }
  }

  /** Sets topic configs on an existing topic (IncrementalAlterConfigs), leaving the others as they are. */
  async setTopicConfigs(topic: string, configs: { name: string; value: string }[]): Promise<void> {
    await this.admin().incrementalAlterConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topic,
          configs: configs.map(({ name, value }) => ({
            name,
            value,
            configOperation: IncrementalAlterConfigOperationTypes.SET,
          })),
        },
      ],
    });
  }

  /**
   * Commits offsets for a consumer group without joining it (generation -1, no member id), as a
   * reader that assigns its own partitions does.
   */
  async commitOffsets(
    groupId: string,
    topic: string,
    offsets: readonly { partition: number; offset: number }[],
  ): Promise<void> {
    await this.admin().alterConsumerGroupOffsets({
      groupId,
      topics: [
        {
          name: topic,
          partitionOffsets: offsets.map(({ partition, offset }) => ({ partition, offset: BigInt(offset) })),
        },
      ],
    });
  }

  /** The last stable offset of each listed partition (read_committed ListOffsets). */
  async lastStableOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, number>> {
    const offsets = await this.#client.listOffsets({
      topics: [topic],
      partitions: { [topic]: [...partitions] },
      isolationLevel: READ_COMMITTED,
    });
    const list = offsets.get(topic) ?? [];
    const out = new Map<number, number>();
    for (const partition of partitions) {
      const offset = list[partition];
      if (offset !== undefined) out.set(partition, Number(offset));
    }
    return out;
  }

  /**
   * Fetches from `offset`; the broker holds the request up to `maxWaitMs` while it has nothing at or
   * past `offset` below the last stable offset.
   */
  async fetch(topic: string, partition: number, offset: number, maxWaitMs: number): Promise<FetchResult> {
    const metadata = await this.#metadata([topic], false);
    const leader = metadata.topics.get(topic)?.partitions[partition]?.leader;
    const broker = leader === undefined ? undefined : metadata.brokers.get(leader);
    if (broker === undefined) {
      this.#client.clearMetadata();
      throw new Error(`kafka: no leader for ${topic}/${partition}`);
    }
    const connection = await this.#client.connections.get(broker);
    let response: Awaited<ReturnType<typeof fetchV12.api.async>>;
    try {
      response = await fetchV12.api.async(
        connection,
        maxWaitMs,
        maxWaitMs > 0 ? 1 : 0,
        FETCH_MAX_BYTES,
        READ_COMMITTED,
        NO_SESSION_ID,
        FINAL_EPOCH,
        [
          {
            topicId: topic,
            partitions: [
              {
                partition,
                currentLeaderEpoch: -1,
                fetchOffset: BigInt(offset),
                lastFetchedEpoch: -1,
                partitionMaxBytes: FETCH_MAX_BYTES,
              },
            ],
          },
        ],
        [],
        '',
      );
    } catch (error) {
      const failed = (error as { response?: typeof response }).response?.responses[0]?.partitions[0];
      if (failed?.errorCode === OFFSET_OUT_OF_RANGE) {
        return { records: [], next: offset, lastStable: 0, outOfRange: true };
      }
      // Leadership may have moved (a restarted broker): ask for fresh metadata next time.
      this.#client.clearMetadata();
      throw error;
    }
    const data = response.responses[0]?.partitions.find(
      (candidate) => candidate.partitionIndex === partition,
    );
    if (data === undefined) return { records: [], next: offset, lastStable: 0, outOfRange: false };
    const lastStable = Number(data.lastStableOffset >= 0n ? data.lastStableOffset : data.highWatermark);
    const records: FetchedRecord[] = [];
    let next = offset;
    const abortedProducers = new Set<bigint>();
    const pending = [...(data.abortedTransactions ?? [])].sort((a, b) =>
      a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
    );
    for (const batch of data.records ?? []) {
      const first = Number(batch.firstOffset);
      const transactional = (batch.attributes & TRANSACTIONAL_BIT) !== 0;
      const control = (batch.attributes & CONTROL_BIT) !== 0;
      // An aborted transaction runs from its first offset to its producer's abort marker (the same
      // walk as Kafka's Java consumer).
      while (
        pending.length > 0 &&
        batch.firstOffset + BigInt(batch.lastOffsetDelta) >= pending[0]!.firstOffset
      ) {
        abortedProducers.add(pending.shift()!.producerId);
      }
      const aborted = transactional && abortedProducers.has(batch.producerId);
      for (const record of batch.records) {
        const recordOffset = first + record.offsetDelta;
        if (control) {
          // An abort marker (control key type 0) ends that producer's aborted transaction; markers
          // before `offset` count too, or a later committed transaction would read as aborted.
          const key = record.key;
          if (aborted && key !== null && key.length >= 4 && key.readInt16BE(2) === 0) {
            abortedProducers.delete(batch.producerId);
          }
        } else if (!aborted && recordOffset >= offset) {
          // A fetch may start at the batch holding `offset`, so earlier records are left out.
          records.push({
            offset: recordOffset,
            key: record.key?.toString('utf8') ?? '',
            value: record.value,
          });
        }
      }
      // The batch's whole range is covered, also where compaction removed records from it.
      next = Math.max(next, first + batch.lastOffsetDelta + 1);
    }
    return { records, next, lastStable, outOfRange: false };
  }

  #metadata(topics: string[], forceUpdate: boolean): Promise<ClusterMetadata> {
    return this.#client.metadata({ topics, forceUpdate });
  }
}

/** True when `error` (a client error, possibly wrapping several) carries Kafka protocol error `id`. */
export function hasProtocolError(error: unknown, id: string): boolean {
  const seen = new Set<unknown>();
  const walk = (candidate: unknown): boolean => {
    if (candidate === null || typeof candidate !== 'object' || seen.has(candidate)) return false;
    seen.add(candidate);
    const value = candidate as { apiId?: string; errors?: unknown[]; cause?: unknown };
    if (value.apiId === id) return true;
    return (value.errors ?? []).some(walk) || walk(value.cause);
  };
  return walk(error);
}

/**
 * The three servers a distributed-mode end-to-end suite needs (Kafka, PostgreSQL, Redis), started
 * together. Outside CI a missing one gives `{skip}` (after stopping the ones that did start); in CI
 * it throws, so a broken image cannot pass by skipping.
 */
import { findOrStartKafka, type TestKafka } from './kafka.ts';
import { findOrStartPostgres, type TestPostgres } from './postgres.ts';
import { findOrStartRedis, type TestRedis } from './redis.ts';

export interface DistributedServers {
  kafka: TestKafka;
  postgres: TestPostgres;
  redis: TestRedis;
  /** Stops whatever this process started. */
  stop: () => Promise<unknown>;
}

export async function findOrStartDistributedServers(): Promise<DistributedServers | { skip: string }> {
  const servers = await Promise.allSettled([findOrStartKafka(), findOrStartPostgres(), findOrStartRedis()]);
  const started = servers.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = () =>
    Promise.allSettled(started.map((server) => ('stop' in server ? server.stop() : undefined)));
  const failed = servers.find((result) => result.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const skips = started.flatMap((server) => ('skip' in server ? [server.skip] : []));
  if (skips.length > 0) {
    await stop();
    return { skip: skips.join('; ') };
  }
  const [kafka, postgres, redis] = started as [TestKafka, TestPostgres, TestRedis];
  return { kafka, postgres, redis, stop };
}

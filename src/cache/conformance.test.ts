import { latestCacheConformance, liveBusConformance } from './conformance.ts';
import { MemoryLatestCache } from './memory/memory-latest-cache.ts';
import { MemoryLiveBus } from './memory/memory-live-bus.ts';

// The Redis implementations run the same suites in test/cache/redis-cache.test.ts.
latestCacheConformance('memory', async () => ({
  create: async (ttlMs) => {
    const cache = new MemoryLatestCache({ ttlMs });
    await cache.open();
    return cache;
  },
  cleanup: async () => {},
}));

liveBusConformance('memory', async () => {
  const bus = new MemoryLiveBus();
  await bus.open();
  return { publisher: bus, subscriber: async () => bus, cleanup: () => bus.close() };
});

/**
 * Distributed mode end to end (docs/design.md, Modes): the same replay through `ingest` → Kafka → two `process`
 * roles → PostgreSQL → `serve` gives over REST exactly what the embedded `run` gives, also when one
 * processor is SIGKILLed midway; every `serve` reports `drained: true` once all of it is stored; and
 * a WebSocket client on `serve` receives the ticks a processor publishes through Redis.
 *
 * Needs Kafka, PostgreSQL and Redis (test/support/kafka.ts, postgres.ts, redis.ts): skipped loudly
 * without them outside CI, failed in CI. Every deployment gets its own topic prefix, schema and Redis
 * key prefix, and every child process is killed in `after`, even when a test fails.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { type StoredTick, storedTickOf } from '../../src/store/store.ts';
import {
  dumpApi,
  dumpDeadLetters,
  getJson,
  isRunning,
  startRole,
  startServe,
  stopRole,
  waitForStats,
} from '../support/cli.ts';
import {
  DeploymentSuite,
  embeddedReference as sharedReference,
  writeDeploymentConfig,
} from '../support/deployment.ts';
import { findOrStartDistributedServers } from '../support/distributed-servers.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { groupOffsets } from '../support/kafka.ts';

/** The part of the config both modes share; the embedded reference runs with only this. */
const PIPELINE_CONFIG = {
  lateness: '10s',
  alerts: {
    rules: [
      { symbol: 'ETHUSDT', above: 200 },
      { symbol: 'BTCUSDT', below: 99 },
    ],
    // Per-symbol state that depends on log order: a processor that saw a symbol's ticks out of order shows here.
    anomaly: { enabled: true, zScore: 3, warmupTicks: 20 },
  },
};
const PARTITIONS = 3;
/** Kafka's consumer-group session timeout decides when a killed processor's partitions move: be generous. */
const DRAIN_TIMEOUT_MS = 180_000;

const servers = await findOrStartDistributedServers();

if ('skip' in servers) {
  it('distributed mode end to end', { skip: servers.skip }, () => {});
} else {
  const { kafka, postgres, redis } = servers;
  const stopServers = servers.stop;
  const brokers = kafka.brokers;
  const pgUrl = postgres.url;
  const redisUrl = redis.url;

  describe('distributed mode: ingest → Kafka → process ×2 → PostgreSQL → serve', () => {
    const suite = new DeploymentSuite('distributed', pgUrl);
    let dir: string;

    before(async () => {
      await suite.open();
      dir = suite.dir;
    });

    after(() => suite.close(stopServers));

    /**
     * A fresh deployment: its own Kafka topics, PostgreSQL schema, Redis keys, config file and data
     * dirs. Its roles are stopped when the test ends, passed or not, so they never load the next test.
     */
    async function deploy(name: string, t: TestContext) {
      const { id, schema, root, track, context: roleTails } = await suite.deployment(name, t);
      const context = () => roleTails();
      const config = join(root, 'config.json');
      await writeDeploymentConfig(config, {
        pipeline: PIPELINE_CONFIG,
        brokers,
        partitions: PARTITIONS,
        id,
        pgUrl,
        schema,
        redisUrl,
      });
      let processors = 0;
      return {
        prefix: `${id}.`,
        context,
        drained: (baseUrl: string) =>
          waitForStats(baseUrl, (stats) => stats.drained === true, { timeoutMs: DRAIN_TIMEOUT_MS, context }),
        serve: async () => track(await startServe(['--config', config])),
        process: async () =>
          track(
            await startRole(
              'process',
              ['--config', config, '--data-dir', join(root, `process-${++processors}`)],
              'Streamlines process started',
            ),
          ),
        ingest: async (replay: string) =>
          track(
            await startRole(
              'ingest',
              ['--config', config, '--data-dir', join(root, 'ingest'), '--replay', replay, '--speed', 'max'],
              'Streamlines ingest started',
            ),
          ),
      };
    }

    /** What the embedded `run` gives for the replay: the reference every distributed run must equal. */
    function embeddedReference(replay: string, name: string) {
      return sharedReference(replay, PIPELINE_CONFIG, {
        config: join(dir, `${name}-embedded.json`),
        dataDir: join(dir, `${name}-embedded`),
      });
    }

    it('two processors over three partitions give what embedded gives, on every serve', {
      timeout: 300_000,
    }, async (t) => {
      const replay = join(dir, 'two.ndjson');
      await writeReplay(replay, { count: 40_000, seed: 31 });
      const expected = await embeddedReference(replay, 'two');
      assert.ok(expected.deadLetters.length > 0, 'the replay has rejects, so dead letters are compared');

      const deployment = await deploy('two', t);
      const serve = await deployment.serve();
      await deployment.process();
      await deployment.process();
      const startedAt = Date.now();
      await deployment.ingest(replay);

      const stats = await deployment.drained(serve.baseUrl);
      t.diagnostic(`drained ${Date.now() - startedAt} ms after ingest started`);
      assert.deepEqual(await dumpApi(serve.baseUrl), expected.dump);
      assert.deepEqual(await dumpDeadLetters(serve.baseUrl), expected.deadLetters, 'dead letters');

      // The processors report their committed offsets to a Kafka consumer group (once a second).
      const reported = async () => {
        const offsets = await groupOffsets(
          brokers,
          `${deployment.prefix}streamlines-process`,
          `${deployment.prefix}price-ticks`,
          PARTITIONS,
        );
        return Object.values(offsets).reduce((sum, offset) => sum + Math.max(0, offset), 0);
      };
      const deadline = Date.now() + 10_000;
      while ((await reported()) !== stats.processedOffset && Date.now() < deadline) await sleep(200);
      assert.equal(await reported(), stats.processedOffset, 'the consumer group holds the committed offsets');

      // Started after the drain: it must learn `drained` and everything else from the store alone.
      const late = await deployment.serve();
      await deployment.drained(late.baseUrl);
      assert.deepEqual(await dumpApi(late.baseUrl), expected.dump, 'a serve started after the drain');
      assert.deepEqual(await dumpDeadLetters(late.baseUrl), expected.deadLetters, 'dead letters, late serve');
    });

    it('SIGKILL of one processor midway: the survivor finishes alone with the same result', {
      timeout: 420_000,
    }, async (t) => {
      const replay = join(dir, 'kill.ndjson');
      await writeReplay(replay, { count: 150_000, seed: 37 });
      const expected = await embeddedReference(replay, 'kill');
      // Progress in entries is the processors' `received` count: Kafka offsets count records (each an
      // append's entries of one partition) and skip markers, so they do not measure it.
      const entries = Number(expected.stats.received);
      assert.ok(entries > 100_000, `embedded run received ${entries}`);

      const deployment = await deploy('kill', t);
      const serve = await deployment.serve();
      const processors = [await deployment.process(), await deployment.process()];
      const startedAt = Date.now();
      await deployment.ingest(replay);

      // A random point in the first half of the work.
      const target = 1 + Math.floor(Math.random() * entries * 0.5);
      const atKill = await waitForStats(
        serve.baseUrl,
        (stats) => Number(stats.received) >= target || stats.drained === true,
        { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 20, context: deployment.context },
      );
      const victimIndex = Math.floor(Math.random() * processors.length);
      const victim = processors[victimIndex]!;
      const survivor = processors[1 - victimIndex]!;
      assert.ok(
        isRunning(victim) && isRunning(survivor),
        `both processors alive before the kill\n${deployment.context()}`,
      );
      await stopRole(victim, 'SIGKILL');
      const moment =
        `killed processor ${victimIndex + 1} (pid ${victim.child.pid}) ${Date.now() - startedAt} ms after ingest ` +
        `started, at ${atKill.received} received (target ${target} of ${entries})`;
      t.diagnostic(moment);
      process.stderr.write(`${moment}\n`);
      assert.notEqual(
        atKill.drained,
        true,
        `${moment}: the processors had finished before the kill; a bigger replay is needed on this machine`,
      );

      await deployment.drained(serve.baseUrl);
      t.diagnostic(`drained ${Date.now() - startedAt} ms after ingest started`);
      assert.ok(isRunning(survivor), `the survivor is still running\n${deployment.context()}`);
      assert.deepEqual(await dumpApi(serve.baseUrl), expected.dump, moment);
      assert.deepEqual(await dumpDeadLetters(serve.baseUrl), expected.deadLetters, `dead letters; ${moment}`);
    });

    it('kill -9 of ingest and a restart, then a PostgreSQL outage: the same result', {
      timeout: 420_000,
    }, async (t) => {
      const replay = join(dir, 'outage.ndjson');
      await writeReplay(replay, { count: 150_000, seed: 43 });
      const expected = await embeddedReference(replay, 'outage');
      const entries = Number(expected.stats.received);

      const deployment = await deploy('outage', t);
      const serve = await deployment.serve();
      await deployment.process();
      await deployment.process();
      const startedAt = Date.now();
      const firstIngest = await deployment.ingest(replay);
      const progressed = (share: number) =>
        waitForStats(
          serve.baseUrl,
          (stats) => Number(stats.received) >= entries * share || stats.drained === true,
          { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 20, context: deployment.context },
        );

      // Ingest dies mid-transaction at some point; the same command again continues from its last
      // committed feed position (its producer state in Kafka), with the dedup set rebuilt from Kafka.
      // Since entries are packed per Kafka record, ingest gets the 150 000 lines into Kafka in about a
      // second on a quiet machine: kill it early enough to land mid-replay, and say so if it did not.
      await sleep(Math.floor(Math.random() * 400));
      const finishedBeforeKill = firstIngest.stderr().includes('every feed has ended and is in the log');
      await stopRole(firstIngest, 'SIGKILL');
      t.diagnostic(`ingest killed ${Date.now() - startedAt} ms after it started`);
      assert.ok(
        !finishedBeforeKill,
        `ingest had appended the whole replay before the kill; a bigger replay is needed on this machine\n${deployment.context()}`,
      );
      await deployment.ingest(replay);

      // The database goes away for a while: processors retry from their last commit, renew their
      // leases once it is back, and resume.
      const before = await progressed(0.3);
      if (postgres !== undefined && 'outage' in postgres && postgres.outage && before.drained !== true) {
        t.diagnostic(`PostgreSQL down for 3 s at ${before.received} received`);
        await postgres.outage(3_000);
      } else {
        t.diagnostic('no PostgreSQL outage: the server was not started by this test, or all was processed');
      }

      await deployment.drained(serve.baseUrl);
      t.diagnostic(`drained ${Date.now() - startedAt} ms after ingest started`);
      assert.deepEqual(await dumpApi(serve.baseUrl), expected.dump);
      assert.deepEqual(await dumpDeadLetters(serve.baseUrl), expected.deadLetters, 'dead letters');
    });

    it('a WebSocket client on serve receives the ticks a processor publishes (Redis fan-out)', {
      timeout: 180_000,
    }, async (t) => {
      const replay = join(dir, 'live.ndjson');
      await writeReplay(replay, { count: 5_000, seed: 41 });

      const deployment = await deploy('live', t);
      const serve = await deployment.serve();
      const received: { channel: string; data: Record<string, unknown> }[] = [];
      const socket = new WebSocket(`${serve.baseUrl.replace(/^http/, 'ws')}/ws`);
      try {
        await new Promise((resolve, reject) => {
          socket.once('open', resolve);
          socket.once('error', reject);
        });
        const subscribed = new Promise<unknown>((resolve) => {
          socket.on('message', (raw) => {
            const message = JSON.parse(raw.toString());
            if ('op' in message) resolve(message);
            else received.push(message);
          });
        });
        socket.send(JSON.stringify({ op: 'subscribe', channels: ['ticks:BTCUSDT'] }));
        assert.deepEqual(await subscribed, { op: 'subscribed', channels: ['ticks:BTCUSDT'] });

        // Only now does anything publish: the serve's subscription to Redis is already in place.
        await deployment.process();
        await deployment.ingest(replay);
        await deployment.drained(serve.baseUrl);
        for (let waited = 0; received.length === 0 && waited < 10_000; waited += 50) await sleep(50);
      } finally {
        socket.terminate();
      }

      assert.ok(received.length > 0, `no live tick reached the WebSocket client\n${deployment.context()}`);
      const { body } = await getJson<{ ticks: Record<string, unknown>[] }>(
        serve.baseUrl,
        '/api/v1/ticks/BTCUSDT?limit=10000',
      );
      // Every live tick is one the processor stored, with the same moving averages.
      const stored = new Set(body.ticks.map((tick) => JSON.stringify(storedFields(tick))));
      for (const { channel, data } of received) {
        assert.equal(channel, 'ticks:BTCUSDT');
        assert.equal(data.symbol, 'BTCUSDT');
        assert.ok(
          stored.has(JSON.stringify(storedFields(data))),
          `live tick not in the store: ${JSON.stringify(data)}`,
        );
      }
    });
  });
}

/** The fields a live tick and a stored tick (`GET /ticks`) share; `id` is null on the wire when absent. */
function storedFields(tick: Record<string, unknown>) {
  return storedTickOf(tick as unknown as StoredTick);
}

/**
 * Faults of the distributed mode's servers, seen from outside (issue #11, "Every fault visible to the
 * operator"): ingest → Kafka → two `process` → PostgreSQL → `serve`, with Redis for the live stream,
 * each role a real subprocess. While Kafka, Redis or PostgreSQL is away, `/ready` of every role that
 * depends on it names it within seconds; each role logs the fault once when it begins and once when it
 * ends (nothing in between for an outage this short); and once the server is back the run ends exactly
 * as the embedded `run` of the same replay.
 *
 * Needs a Kafka broker it may stop (test/support/kafka.ts), and PostgreSQL and Redis started here
 * (their outages stop them): skipped loudly otherwise outside CI, failed in CI.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  dumpApi,
  dumpDeadLetters,
  type RunningRole,
  startRole,
  startServe,
  waitForStats,
} from '../support/cli.ts';
import { DeploymentSuite, embeddedReference, writeDeploymentConfig } from '../support/deployment.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { startRestartableKafka } from '../support/kafka.ts';
import { findOrStartPostgres } from '../support/postgres.ts';
import { findOrStartRedis } from '../support/redis.ts';

const PIPELINE_CONFIG = {
  lateness: '10s',
  alerts: {
    rules: [{ symbol: 'ETHUSDT', above: 200 }],
    anomaly: { enabled: true, zScore: 3, warmupTicks: 20 },
  },
};
const PARTITIONS = 3;
/** Lines per replay, and how fast ingest replays them: about a minute of feed, so outages fall inside it. */
const LINES = 12_000;
const SPEED = '250';
/** "Within a few seconds": the checks look every 500 ms and call Kafka gone after 3 s of silence. */
const NOTICE_MS = 15_000;
const DRAIN_TIMEOUT_MS = 240_000;

const servers = await Promise.allSettled([
  startRestartableKafka(),
  findOrStartPostgres(),
  findOrStartRedis(),
]);
const value = <T>(result: PromiseSettledResult<T>) =>
  result.status === 'fulfilled' ? result.value : undefined;
const kafka = value(servers[0]);
const postgres = value(servers[1]);
const redis = value(servers[2]);
const stopServers = () =>
  Promise.allSettled([
    kafka && 'destroy' in kafka ? kafka.destroy() : undefined,
    postgres && 'stop' in postgres ? postgres.stop() : undefined,
    redis && 'stop' in redis ? redis.stop() : undefined,
  ]);
const rejected = servers.find((result) => result.status === 'rejected');
if (rejected) {
  await stopServers();
  throw rejected.reason;
}
const skip =
  [kafka, postgres, redis]
    .flatMap((server) => (server && 'skip' in server ? [server.skip] : []))
    .join('; ') ||
  (postgres && 'outage' in postgres && postgres.outage === undefined
    ? 'PostgreSQL was not started by this test (STREAMLINES_TEST_PG_URL): it cannot be stopped'
    : '') ||
  (redis && 'outage' in redis && redis.outage === undefined
    ? 'Redis was not started by this test (STREAMLINES_TEST_REDIS_URL): it cannot be restarted'
    : '');

if (
  skip !== '' ||
  !kafka ||
  'skip' in kafka ||
  !postgres ||
  'skip' in postgres ||
  !redis ||
  'skip' in redis
) {
  await stopServers();
  it('distributed faults', { skip: skip || 'a server is missing' }, () => {});
} else {
  const broker = kafka;
  const database = postgres;
  const cacheServer = redis;
  describe('distributed faults: /ready, one log line at each end, exact results', () => {
    const suite = new DeploymentSuite('faults-distributed', database.url);
    let dir: string;

    before(async () => {
      await suite.open();
      dir = suite.dir;
    });

    after(() => suite.close(stopServers));

    /** A running deployment: every role with the URL of its `/ready`. */
    interface Deployment {
      serve: RunningRole & { baseUrl: string };
      roles: { name: string; role: RunningRole; url: string }[];
      context: () => string;
    }

    /**
     * A fresh deployment (own topics, schema, Redis keys) of serve, two processors and an ingest
     * replaying `replay` at SPEED; every role is stopped when the test ends.
     */
    async function deploy(name: string, replay: string, t: TestContext): Promise<Deployment> {
      const { id, schema, root, track, context } = await suite.deployment(name, t);
      const config = join(root, 'config.json');
      await writeDeploymentConfig(config, {
        pipeline: PIPELINE_CONFIG,
        brokers: broker.brokers,
        partitions: PARTITIONS,
        id,
        pgUrl: database.url,
        schema,
        redisUrl: cacheServer.url,
      });
      const ops = ['--port', '0', '--host', '127.0.0.1'];
      const serve = track(await startServe(['--config', config]));
      const roles = [{ name: 'serve', role: serve as RunningRole, url: serve.baseUrl }];
      for (const n of [1, 2]) {
        const role = track(
          await startRole(
            'process',
            ['--config', config, '--data-dir', join(root, `process-${n}`), ...ops],
            'Streamlines process started',
          ),
        );
        roles.push({ name: `process ${n}`, role, url: opsUrl(role) });
      }
      const ingest = track(
        await startRole(
          'ingest',
          [
            '--config',
            config,
            '--data-dir',
            join(root, 'ingest'),
            '--replay',
            replay,
            '--speed',
            SPEED,
            ...ops,
          ],
          'Streamlines ingest started',
        ),
      );
      roles.push({ name: 'ingest', role: ingest, url: opsUrl(ingest) });
      return { serve, roles, context: () => context(3_000) };
    }

    /**
     * A replay of LINES lines, what the embedded `run` gives for it (what the run must equal), and a
     * deployment replaying it at SPEED that has processed some of it, so a fault falls mid-run.
     */
    async function startRun(name: string, seed: number, t: TestContext) {
      const replay = join(dir, `${name}.ndjson`);
      await writeReplay(replay, { count: LINES, seed });
      const expected = await embeddedReference(replay, PIPELINE_CONFIG, {
        config: join(dir, `${name}-embedded.json`),
        dataDir: join(dir, `${name}-embedded`),
      });
      const deployment = await deploy(name, replay, t);
      return { expected, deployment };
    }

    /** Waits until the deployment has processed `entries` log entries, so the fault falls mid-run. */
    async function flowing(deployment: Deployment, entries: number) {
      const stats = await waitForStats(
        deployment.serve.baseUrl,
        // Entries, counted by the processors: Kafka offsets count records (docs/kafka.md).
        (s) => Number(s.received) >= entries,
        {
          timeoutMs: 120_000,
          context: deployment.context,
        },
      );
      assert.notEqual(stats.drained, true, 'the replay ended before the fault: slow it down');
    }

    /**
     * Each role in `names` exports the dependency as degraded (1) in its `/metrics` (within a few
     * seconds: the registry behind it looks every 500 ms, `/ready` at once).
     */
    async function assertMetric(deployment: Deployment, names: string[], dependency: string): Promise<void> {
      const line = `streamlines_dependency_degraded{dependency="${dependency}"} 1`;
      for (const { name, url } of deployment.roles) {
        if (!names.includes(name)) continue;
        let text = '';
        for (let tries = 0; tries < 25 && !text.split('\n').includes(line); tries++) {
          if (tries > 0) await sleep(200);
          text = await (await fetch(`${url}/metrics`)).text();
        }
        assert.ok(text.split('\n').includes(line), `${name} /metrics has no ${line}`);
      }
    }

    /**
     * Polls `/ready` of each role in `names` until `dependency` is reported failing there (`failing`)
     * or every check passes again (`!failing`); returns how long that took per role.
     */
    async function awaitReadiness(
      deployment: Deployment,
      names: string[],
      dependency: string,
      failing: boolean,
      timeoutMs: number,
    ): Promise<Record<string, { ms: number; body: ReadyBody }>> {
      const startedAt = Date.now();
      const seen: Record<string, { ms: number; body: ReadyBody }> = {};
      const last: Record<string, unknown> = {};
      while (Date.now() - startedAt < timeoutMs) {
        for (const { name, url } of deployment.roles) {
          if (!names.includes(name) || seen[name]) continue;
          const ready = await readyOf(url);
          last[name] = ready;
          const check = ready.body.checks?.[dependency];
          const done = failing
            ? check?.ok === false && ready.body.status !== 'ready'
            : ready.status === 200 && ready.body.status === 'ready';
          if (done) seen[name] = { ms: Date.now() - startedAt, body: ready.body };
        }
        if (names.every((name) => seen[name])) return seen;
        await sleep(200);
      }
      assert.fail(
        `/ready did not ${failing ? `name ${dependency}` : 'recover'} within ${timeoutMs} ms on ${names
          .filter((name) => !seen[name])
          .join(', ')}; last: ${JSON.stringify(last)}\n${deployment.context()}`,
      );
    }

    /** Where each role's stderr stands now, so a fault's lines can be told from earlier ones. */
    function markLogs(deployment: Deployment): Map<string, number> {
      return new Map(deployment.roles.map(({ name, role }) => [name, role.stderr().length]));
    }

    /**
     * Since `mark`, each role in `names` logged exactly one start and one end of the fault of
     * `dependency`, and little else: an outage is not a line per retry.
     */
    function assertLoggedOnce(
      deployment: Deployment,
      mark: Map<string, number>,
      names: string[],
      dependency: string,
    ): void {
      for (const { name, role } of deployment.roles) {
        if (!names.includes(name)) continue;
        const text = role.stderr().slice(mark.get(name) ?? 0);
        const lines = text.split('\n').filter((line) => line !== '');
        // Each distinct event once or a few times (`took partition 0, 1, 2`), never once per retry.
        const shapes = new Map<string, number>();
        for (const line of lines) {
          const shape = line.replace(/"time":\d+,/, '').replace(/\d+/g, 'N');
          shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
        }
        const repeated = [...shapes].filter(([, times]) => times > 3);
        assert.deepEqual(repeated, [], `${name} repeated lines during the fault:\n${text}`);
        assert.ok(lines.length <= 20, `${name} logged ${lines.length} lines during the fault:\n${text}`);
        // Per line: serve's JSON lines carry the message twice (`health.message` and `msg`).
        const begun = count(text, new RegExp(`\\b${dependency} degraded: `));
        const ended = count(text, new RegExp(`\\b${dependency} ok again after `));
        assert.deepEqual(
          { begun, ended },
          { begun: 1, ended: 1 },
          `${name}: lines about ${dependency}:\n${text
            .split('\n')
            .filter((line) => line.includes(dependency))
            .join('\n')}`,
        );
      }
    }

    async function assertExact(
      deployment: Deployment,
      expected: Awaited<ReturnType<typeof embeddedReference>>,
    ) {
      await waitForStats(deployment.serve.baseUrl, (stats) => stats.drained === true, {
        timeoutMs: DRAIN_TIMEOUT_MS,
        context: deployment.context,
      });
      assert.deepEqual(await dumpApi(deployment.serve.baseUrl), expected.dump);
      assert.deepEqual(await dumpDeadLetters(deployment.serve.baseUrl), expected.deadLetters, 'dead letters');
    }

    it('Kafka stopped for 20 s: every role names the log, logs it twice, and the run ends exact', {
      timeout: 600_000,
    }, async (t) => {
      const { expected, deployment } = await startRun('kafka', 51, t);
      const everyName = deployment.roles.map((role) => role.name);
      await flowing(deployment, 1_000);

      const mark = markLogs(deployment);
      const downAt = Date.now();
      await broker.stopBroker();
      t.after(() => broker.startBroker());
      t.diagnostic(`broker stopped in ${Date.now() - downAt} ms`);
      const noticed = await awaitReadiness(deployment, everyName, 'log', true, NOTICE_MS + 10_000);
      t.diagnostic(
        `noticed after (ms): ${JSON.stringify(Object.fromEntries(Object.entries(noticed).map(([n, s]) => [n, s.ms])))}`,
      );
      for (const [name, { ms, body }] of Object.entries(noticed)) {
        assert.ok(ms <= NOTICE_MS, `${name} named the log only after ${ms} ms`);
        assert.equal(body.checks?.log?.code, 'log_unavailable', name);
        assert.match(body.checks?.log?.error ?? '', /Kafka/, name);
      }
      await assertMetric(deployment, everyName, 'log');
      await sleep(Math.max(0, 20_000 - (Date.now() - downAt)));
      await broker.startBroker();
      t.diagnostic(`broker back after ${Date.now() - downAt} ms`);

      await awaitReadiness(deployment, everyName, 'log', false, 60_000);
      await assertExact(deployment, expected);
      assertLoggedOnce(deployment, mark, everyName, 'log');
    });

    it('Redis restarted: serve and processors name the cache, live delivery resumes, the run ends exact', {
      timeout: 600_000,
    }, async (t) => {
      const { expected, deployment } = await startRun('redis', 53, t);
      const socket = await subscribe(deployment.serve.baseUrl, ['ticks:BTCUSDT']);
      try {
        await flowing(deployment, 1_000);
        assert.ok(socket.received() > 0, 'live ticks arrive before the restart');

        const mark = markLogs(deployment);
        const outage = cacheServer.outage!(8_000);
        // Back before the next test, even when an assertion fails meanwhile.
        t.after(() => outage.catch(() => undefined));
        const names = ['serve', 'process 1', 'process 2'];
        const noticed = await awaitReadiness(deployment, names, 'cache', true, NOTICE_MS);
        for (const [name, { body }] of Object.entries(noticed)) {
          // Without Redis every read still answers: degraded, not unavailable.
          assert.equal(body.status, 'degraded', name);
          assert.equal(body.checks?.cache?.code, 'cache_unavailable', name);
        }
        await assertMetric(deployment, names, 'cache');
        await outage;
        await awaitReadiness(deployment, names, 'cache', false, 60_000);
        const before = socket.received();
        await waitUntil(
          () => socket.received() > before,
          30_000,
          () => `no live tick after Redis came back\n${deployment.context()}`,
        );

        await assertExact(deployment, expected);
        assertLoggedOnce(deployment, mark, names, 'cache');
      } finally {
        socket.close();
      }
    });

    it('PostgreSQL stopped for 10 s: processors and serve name the store, log it twice, the run ends exact', {
      timeout: 600_000,
    }, async (t) => {
      const { expected, deployment } = await startRun('postgres', 57, t);
      await flowing(deployment, 1_000);

      const mark = markLogs(deployment);
      const outage = database.outage!(10_000);
      t.after(() => outage.catch(() => undefined));
      const names = ['serve', 'process 1', 'process 2'];
      const noticed = await awaitReadiness(deployment, names, 'store', true, NOTICE_MS);
      for (const [name, { body }] of Object.entries(noticed)) {
        assert.equal(body.status, 'unavailable', name);
      }
      await assertMetric(deployment, ['process 1', 'process 2'], 'store');
      await outage;
      await awaitReadiness(deployment, names, 'store', false, 60_000);
      await assertExact(deployment, expected);
      assertLoggedOnce(deployment, mark, ['process 1', 'process 2'], 'store');
    });
  });
}

interface ReadyBody {
  status?: string;
  checks?: Record<string, { ok: boolean; error?: string; code?: string }>;
}

/** `/ready` of a role; status 0 when it did not answer. */
async function readyOf(url: string): Promise<{ status: number; body: ReadyBody }> {
  try {
    const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, body: (await response.json()) as ReadyBody };
  } catch {
    return { status: 0, body: {} };
  }
}

/** The address a role printed for its `/health`, `/ready` and `/metrics` (`--port`). */
function opsUrl(role: RunningRole): string {
  const match = /metrics on (http:\/\/\S+)/.exec(role.stdout());
  assert.ok(match, `${role.role} printed no metrics address: ${role.stdout()}`);
  return match[1]!;
}

/** The lines of `text` that match `pattern`. */
function count(text: string, pattern: RegExp): number {
  return text.split('\n').filter((line) => pattern.test(line)).length;
}

async function waitUntil(done: () => boolean, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(message());
    await sleep(100);
  }
}

/** A WebSocket client of serve subscribed to `channels`, counting the messages it receives. */
async function subscribe(baseUrl: string, channels: string[]) {
  const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  let received = 0;
  const subscribed = new Promise<void>((resolve) => {
    socket.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as Record<string, unknown>;
      if ('op' in message) resolve();
      else received++;
    });
  });
  socket.send(JSON.stringify({ op: 'subscribe', channels }));
  await subscribed;
  return { received: () => received, close: () => socket.terminate() };
}

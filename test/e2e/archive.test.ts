/**
 * The lake in the distributed mode, end to end on the real CLI (docs/warehouse.md, "The distributed
 * mode"): a replay spanning more than three days of event time through `ingest` → Kafka → `process`
 * → PostgreSQL with `retention: {ticks: 1d, candles: 1d}`, with `archive` moving final days to the
 * lake (and kill -9'd in the middle of a lake write, then restarted), answers over `serve`'s REST
 * exactly what the embedded `run` answers without retention; PostgreSQL keeps only the last day;
 * every tick is in the lake once; `streamlines sql` counts what `accepted` says.
 *
 * Needs Kafka, PostgreSQL and Redis (test/support): skipped loudly without them outside CI.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  drainedDump,
  dumpApi,
  type RunningRole,
  replayArgs,
  runCliOnce,
  startRole,
  startServe,
  stopRole,
  waitForStats,
} from '../support/cli.ts';
import { describeRoles } from '../support/deployment.ts';
import { findOrStartDistributedServers } from '../support/distributed-servers.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { killDuringLakeWrite, lakeCounts } from '../support/lake.ts';
import { createTestSchema } from '../support/postgres.ts';

const DAY_MS = 86_400_000;
const PIPELINE_CONFIG = {
  lateness: '10s',
  alerts: {
    rules: [
      { symbol: 'ETHUSDT', above: 200 },
      { symbol: 'BTCUSDT', below: 90 },
    ],
  },
};

const servers = await findOrStartDistributedServers();

if ('skip' in servers) {
  it('archive end to end', { skip: servers.skip }, () => {});
} else {
  const { kafka, postgres, redis } = servers;
  const stopServers = servers.stop;
  describe('archive: ingest → Kafka → process → PostgreSQL → archive → lake, serve over both', () => {
    let dir: string;
    const roles: RunningRole[] = [];
    let dropSchema: (() => Promise<void>) | undefined;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'streamlines-archive-e2e-'));
    });

    after(async () => {
      await Promise.allSettled(roles.map((role) => stopRole(role, 'SIGKILL', 5_000)));
      await dropSchema?.();
      await stopServers();
      await rm(dir, { recursive: true, force: true });
    });

    it('answers like the embedded run without retention, across kill -9 of archive mid-write', {
      timeout: 900_000,
    }, async (t) => {
      const replay = join(dir, 'ticks.ndjson');
      // About 1.15 s of event time per line: 240 000 lines span a little over three days.
      await writeReplay(replay, { count: 240_000, seed: 5 });

      const embeddedConfig = join(dir, 'embedded.json');
      await writeFile(embeddedConfig, JSON.stringify({ ...PIPELINE_CONFIG, lake: { enabled: false } }));
      const expected = await drainedDump(replayArgs(replay, join(dir, 'embedded'), embeddedConfig));
      const expectedStats = expected.counters as { accepted: number };

      const id = `arch${process.pid}x${Date.now().toString(36)}`;
      const { schema, drop } = await createTestSchema(postgres.url);
      dropSchema = drop;
      const lakePath = join(dir, 'lake');
      await mkdir(join(dir, 'roles'), { recursive: true });
      const config = join(dir, 'distributed.json');
      await writeFile(
        config,
        JSON.stringify({
          ...PIPELINE_CONFIG,
          log: { type: 'kafka', brokers: kafka.brokers, partitions: 3, topicPrefix: `${id}.` },
          store: { type: 'postgres', url: postgres.url, schema },
          cache: { type: 'redis', url: redis.url, keyPrefix: `${id}:` },
          retention: { ticks: '1d', candles: '1d' },
          lake: { path: lakePath, intervalMs: 200 },
        }),
      );
      const track = <T extends RunningRole>(role: T): T => {
        roles.push(role);
        return role;
      };
      const context = () => describeRoles(roles);
      const archive = () =>
        startRole(
          'archive',
          ['--config', config, '--data-dir', join(dir, 'roles')],
          'Streamlines archive started',
        );

      const serve = track(await startServe(['--config', config, '--data-dir', join(dir, 'roles')]));
      track(
        await startRole(
          'process',
          ['--config', config, '--data-dir', join(dir, 'roles', 'process')],
          'Streamlines process started',
        ),
      );
      const firstArchive = track(await archive());
      track(
        await startRole(
          'ingest',
          [
            '--config',
            config,
            '--data-dir',
            join(dir, 'roles', 'ingest'),
            '--replay',
            replay,
            '--speed',
            'max',
          ],
          'Streamlines ingest started',
        ),
      );
      // kill -9 while a pass writes Parquet (its temp folder exists), then start it again.
      await killDuringLakeWrite(firstArchive, lakePath);
      t.diagnostic('archive killed in the middle of a lake write');
      track(await archive());

      const stats = await waitForStats(serve.baseUrl, (body) => body.drained === true, {
        timeoutMs: 600_000,
        context,
      });
      assert.equal(stats.accepted, expectedStats.accepted);
      // Every final row reaches the lake, then retention deletes what is more than a day old.
      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      try {
        const deadline = Date.now() + 300_000;
        for (;;) {
          const counts = await lakeCounts(lakePath);
          const hot = Number(
            (await client.query(`SELECT count(*) AS n FROM "${schema}".ticks`)).rows[0].n as string,
          );
          if (
            counts.ticks === stats.accepted &&
            counts.candles === stats.candlesClosed &&
            counts.alerts === stats.alertsFired &&
            hot < (stats.accepted as number) / 2
          ) {
            assert.equal(counts.distinctSeq, counts.ticks, 'no tick is in the lake twice');
            const { rows } = await client.query(`SELECT max(ts) - min(ts) AS span FROM "${schema}".ticks`);
            assert.ok(Number(rows[0].span) <= 2 * DAY_MS, `PostgreSQL keeps about a day: ${rows[0].span} ms`);
            break;
          }
          assert.ok(
            Date.now() < deadline,
            `lake ${JSON.stringify(counts)}, PostgreSQL ${hot} ticks, vs ${JSON.stringify(stats)}\n${context()}`,
          );
          await sleep(500);
        }
      } finally {
        await client.end();
      }

      assert.deepEqual(await dumpApi(serve.baseUrl), expected);

      const sql = await runCliOnce([
        'sql',
        'SELECT count(*) AS n FROM ticks',
        '--config',
        config,
        '--data-dir',
        join(dir, 'roles'),
        '--format',
        'json',
      ]);
      assert.equal(sql.code, 0, sql.stderr);
      assert.deepEqual(JSON.parse(sql.stdout), [{ n: stats.accepted }]);
    });
  });
}

/**
 * The distributed roles refuse, with exit code 2 and a message naming the key to set, a config
 * whose engines other processes cannot share — before connecting to anything.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliOnce } from '../../test/support/cli.ts';

describe('streamlines ingest | process | serve: config checks', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-roles-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const role of ['ingest', 'process', 'serve']) {
    it(`${role} on the embedded defaults asks for a Kafka log`, async () => {
      const { code, stderr } = await runCliOnce([role, '--data-dir', dir]);
      assert.equal(code, 2);
      assert.match(stderr, /set log\.type to "kafka"/);
    });
  }

  it('process and serve also ask for a store other processes can reach', async () => {
    const config = join(dir, 'kafka-duckdb.json');
    await writeFile(config, JSON.stringify({ log: { type: 'kafka', brokers: ['127.0.0.1:1'] } }));
    for (const role of ['process', 'serve']) {
      const { code, stderr } = await runCliOnce([role, '--config', config, '--data-dir', dir]);
      assert.equal(code, 2, role);
      assert.match(stderr, /set store\.type to "postgres"/, role);
    }
  });

  it('a replay goes to ingest, not to process or serve', async () => {
    const replay = join(dir, 'ticks.ndjson');
    await writeFile(replay, '{"symbol":"A","ts":1,"price":1,"size":1}\n');
    for (const role of ['process', 'serve']) {
      const { code, stderr } = await runCliOnce([role, '--replay', replay]);
      assert.equal(code, 2, role);
      assert.match(stderr, /takes no --replay \(give it to "ingest"\)/, role);
    }
  });
});

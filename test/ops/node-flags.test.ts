/**
 * V8 reads its flags only when node starts, so the CLI's memory settings (docs/engine.md, Memory) live
 * on the first line of bin/streamlines.js and must be repeated by every other way the product starts:
 * `npm start`, the Dockerfile and the hand-over to the bundled Node. Checked here, and that starting the
 * bin file itself (as `npx streamlines` does) runs node with them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CLI, CLI_NODE_FLAGS, startServing, stopCli } from '../support/cli.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFile(path.join(ROOT, file), 'utf8');

describe('the node flags the CLI starts with', () => {
  it('are on the first line of bin/streamlines.js and size the young generation', () => {
    assert.ok(
      CLI_NODE_FLAGS.some((flag) => /^--max-semi-space-size=\d+$/.test(flag)),
      CLI_NODE_FLAGS.join(' '),
    );
  });

  it('are the same for npm start, the Dockerfile and the hand-over to the bundled Node', async () => {
    const start = JSON.parse(await read('package.json')).scripts.start as string;
    assert.ok(start.startsWith(`node ${CLI_NODE_FLAGS.join(' ')} bin/streamlines.js `), start);
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(await read('Dockerfile'))?.[1];
    assert.deepEqual(JSON.parse(entrypoint ?? 'null'), ['node', ...CLI_NODE_FLAGS, 'bin/streamlines.js']);
    const handOver = /const NODE_FLAGS = (\[.*\]);/.exec(await read('bin/streamlines.js'))?.[1];
    assert.deepEqual(JSON.parse((handOver ?? 'null').replaceAll("'", '"')), CLI_NODE_FLAGS);
  });

  it('reach node when the bin file itself is started, as npx does', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'streamlines-node-flags-'));
    const cli = await startServing(
      'bin',
      CLI,
      ['run', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir],
      30_000,
    );
    try {
      const cmdline = (await readFile(`/proc/${cli.child.pid}/cmdline`, 'utf8')).split('\0');
      for (const flag of CLI_NODE_FLAGS)
        assert.ok(cmdline.includes(flag), `${flag} not in ${cmdline.join(' ')}`);
    } finally {
      await stopCli(cli);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

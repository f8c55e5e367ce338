/**
 * The command line helps a new user: every subcommand answers --help, a typo gets the nearest flag or
 * command, and a port in use says how to pick another.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { runCliOnce } from '../../test/support/cli.ts';
import { editDistance, nearest } from './args.ts';

describe('streamlines --help', () => {
  for (const command of ['run', 'ingest', 'process', 'serve', 'backfill', 'keys']) {
    it(`${command} --help prints its usage and exits 0`, async () => {
      const { code, stdout, stderr } = await runCliOnce([command, '--help']);
      assert.equal(code, 0, stderr);
      assert.match(stdout, new RegExp(`^Usage: streamlines ${command}\\b`));
      assert.equal(stderr, '');
    });
  }

  it('the main help points at every command, and each one it points at answers -h', async () => {
    const { code, stdout } = await runCliOnce(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /Every command takes --help/);
    assert.equal((await runCliOnce(['backfill', '-h'])).code, 0);
  });
});

describe('streamlines: mistakes on the command line', () => {
  it('an unknown flag names the nearest one and the help, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['run', '--confg', 'x.yaml'],
        /unknown option --confg: did you mean --config\?\nSee: streamlines run --help/,
      ],
      [['run', '--data-dri', 'd'], /did you mean --data-dir\?/],
      [
        ['backfill', '--symbl', 'X'],
        /unknown option --symbl: did you mean --symbol\?\nSee: streamlines backfill --help/,
      ],
      [['keys', 'list', '--nmae', 'x'], /did you mean --name\?/],
      [['sql', '--fromat', 'json', 'SELECT 1'], /did you mean --format\?\nSee: streamlines sql --help/],
      [['import', '--symbl', 'X', 'f.csv'], /did you mean --symbol\?\nSee: streamlines import --help/],
      [['run', '--frobnicate'], /unknown option --frobnicate\nSee: streamlines run --help/],
      [['run', '--port'], /--port needs a value/],
      [['serv'], /unknown command "serv": did you mean "serve"\?/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runCliOnce(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    }
  });
});

describe('streamlines run on a port in use', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-port-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('says the port is taken and how to choose another, exit 2, data dir released', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const args = ['run', '--port', String(port), '--host', '127.0.0.1', '--data-dir', join(dir, 'data')];
      const first = await runCliOnce(args);
      assert.equal(first.code, 2, first.stderr);
      assert.match(first.stderr, new RegExp(`port ${port} is already in use on 127\\.0\\.0\\.1`));
      assert.match(first.stderr, /--port 0 to pick a free one/);
      assert.doesNotMatch(first.stderr, /\n\s+at /, 'no stack trace');
      // It stopped cleanly: the data dir is free for the next try at once.
      const second = await runCliOnce(args);
      assert.doesNotMatch(second.stderr, /in use by process/);
      assert.match(second.stderr, /already in use/);
    } finally {
      blocker.close();
    }
  });
});

test('edit distance counts a swap of neighbours as one edit; nearest needs a plausible typo', () => {
  assert.equal(editDistance('nmae', 'name'), 1);
  assert.equal(editDistance('confg', 'config'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(nearest('confg', ['config', 'port']), 'config');
  assert.equal(nearest('por', ['config', 'port']), 'port');
  assert.equal(nearest('frobnicate', ['config', 'port']), undefined);
});

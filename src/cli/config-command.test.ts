/** `streamlines --version`, `config check FILE` and `config schema`, run as a user runs them. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/streamlines.js');

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('streamlines --version and config', () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
    const { code, stdout } = await cli(['--version']);
    assert.equal(code, 0);
    assert.equal(stdout, `streamlines ${version}\n`);
  });

  it('config check passes a good file, naming the environment overrides it took', async () => {
    const { code, stdout } = await cli(['config', 'check', path.join(root, 'config/default.yaml')], {
      STREAMLINES_SERVER__PORT: '9000',
    });
    assert.equal(code, 0);
    assert.match(stdout, /default\.yaml: ok/);
    assert.match(stdout, /server\.port from STREAMLINES_SERVER__PORT/);
  });

  it('config check fails with exit 2 and every problem with its key path', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'streamlines-config-'));
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'serverr: {}\nlog: {type: kafka}\n');
    const { code, stderr } = await cli(['config', 'check', file]);
    assert.equal(code, 2);
    assert.match(stderr, /serverr: unknown key/);
    assert.match(stderr, /log\.brokers/);
  });

  it('config docs prints docs/configuration.md', async () => {
    const { code, stdout } = await cli(['config', 'docs']);
    assert.equal(code, 0);
    assert.equal(stdout, await readFile(path.join(root, 'docs/configuration.md'), 'utf8'));
  });

  it('config schema prints docs/config.schema.json', async () => {
    const { code, stdout } = await cli(['config', 'schema']);
    assert.equal(code, 0);
    assert.deepEqual(
      JSON.parse(stdout),
      JSON.parse(await readFile(path.join(root, 'docs/config.schema.json'), 'utf8')),
    );
  });
});

/**
 * `npm install -g` (what `npm link` does too) makes `streamlines` a command that works from any
 * directory, on the machine's own node: the bin hands over to the Node 24 the project installs.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '../..');

const run = promisify(execFile);

describe('npm install -g', () => {
  let prefix: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    prefix = await mkdtemp(join(tmpdir(), 'streamlines-global-'));
    // A local folder installs as a link, like `npm link`; no scripts, so the clone is left as it is.
    await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund', ROOT],
      {
        timeout: 120_000,
      },
    );
    // Only the global bin and the system's directories: the project's node_modules/.bin is not on it,
    // so the command starts on whatever node the machine has.
    env = { ...process.env, PATH: `${join(prefix, 'bin')}:/usr/local/bin:/usr/bin:/bin` };
  });
  after(() => rm(prefix, { recursive: true, force: true }));

  it('links the streamlines command to the package', async () => {
    assert.match(await readlink(join(prefix, 'bin', 'streamlines')), /bin\/streamlines\.js$/);
  });

  it('answers --version and --help from another directory', async () => {
    const version = await run('streamlines', ['--version'], { env, cwd: tmpdir() });
    assert.match(version.stdout, /^streamlines \d+\.\d+\.\d+\n$/);
    const help = await run('streamlines', ['run', '--help'], { env, cwd: tmpdir() });
    assert.match(help.stdout, /^Usage: streamlines run/);
  });

  it('runs the server with its dashboard from another directory, and stops on SIGTERM', async () => {
    const dataDir = join(prefix, 'data');
    const child = spawn('streamlines', ['run', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
      env,
      cwd: tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not listening after 60 s: ${stderr}`)), 60_000);
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        const match = /listening on (http:\/\/\S+)/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    });
    try {
      assert.equal((await fetch(`${url}/health`)).status, 200);
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<div id="app"|<script type="module"/);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, stderr);
    }
  });
});

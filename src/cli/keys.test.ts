import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCliOnce, startCli, stopCli } from '../../test/support/cli.ts';
import { waitUntil } from '../../test/support/wait.ts';
import { KeyVerifier } from '../serve/auth/keys.ts';
import { DuckDbStore } from '../store/duckdb/duckdb-store.ts';
import { CLI_SESSION_FILE, type CliSession, readCliSession } from './cli-session.ts';
import { formatKeyTable } from './keys.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-keys-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What the key verifier of a server over this data dir would say about `key`. */
async function verifyInDataDir(dataDir: string, key: string) {
  const store = new DuckDbStore({ path: path.join(dataDir, 'streamlines.duckdb') });
  await store.open();
  try {
    return await new KeyVerifier(store).verify(key);
  } finally {
    await store.close();
  }
}

describe('streamlines keys', () => {
  test('create prints the key once, list shows it, revoke stops it', async () => {
    const dataDir = path.join(dir, 'main');
    const created = await runCliOnce([
      'keys',
      'create',
      '--name',
      'ops',
      '--role',
      'admin',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(created.stdout, /^sl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    assert.match(created.stderr, /shown only this once/);
    assert.ok(!created.stderr.includes(key.slice(-43)), 'the hint does not repeat the secret');
    const id = key.split('_')[1]!;
    assert.deepEqual(await verifyInDataDir(dataDir, key), { keyId: id, name: 'ops', role: 'admin' });

    const listed = await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+ROLE\s+CREATED\s+REVOKED$/);
    assert.match(lines[1]!, new RegExp(`^${id}\\s+ops\\s+admin\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+-$`));
    assert.ok(!listed.stdout.includes(key.slice(-43)));

    const revoked = await runCliOnce(['keys', 'revoke', id, '--data-dir', dataDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, `revoked ${id}\n`);
    assert.equal(await verifyInDataDir(dataDir, key), undefined);
    const relisted = await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
    assert.match(relisted.stdout.trim().split('\n')[1]!, /admin\s+\S+Z\s+\d{4}-\d\d-\d\dT[\d:.]+Z$/);

    const again = await runCliOnce(['keys', 'revoke', id, '--data-dir', dataDir]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already revoked/);
  });

  test('usage errors exit with 2 and say what is wrong', async () => {
    const dataDir = path.join(dir, 'usage');
    const cases: [string[], RegExp][] = [
      [['keys', 'create', '--name', 'x'], /--role/],
      [['keys', 'create', '--name', 'x', '--role', 'root'], /role must be one of read, admin/],
      [['keys', 'frob'], /unknown keys command "frob"/],
      [['keys', 'revoke'], /exactly one key id/],
      [['keys', 'revoke', 'nope'], /no key with id "nope"/],
      [['keys', 'list', '--role', 'read'], /go with keys create/],
    ];
    for (const [args, message] of cases) {
      const result = await runCliOnce([...args, '--data-dir', dataDir]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
    }
  });

  test('refuses a data dir a running server holds, and a memory store', async () => {
    const dataDir = path.join(dir, 'locked');
    await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
    // This test process is alive, so its pid in the lock file stands for a running server.
    await writeFile(path.join(dataDir, 'streamlines.lock'), String(process.pid));
    const locked = await runCliOnce([
      'keys',
      'create',
      '--name',
      'x',
      '--role',
      'read',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(locked.code, 2);
    assert.match(locked.stderr, new RegExp(`in use by process ${process.pid}`));
    assert.match(locked.stderr, /stop the server first/);
    assert.equal(locked.stdout, '');

    const config = path.join(dir, 'memory.yaml');
    await writeFile(config, 'store: { type: memory }\n');
    const memory = await runCliOnce(['keys', 'list', '--config', config, '--data-dir', path.join(dir, 'm')]);
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /keeps nothing between runs/);
  });
});

describe('streamlines keys while the server runs', () => {
  test('creates the first admin key, lists and revokes through the server, without a restart', async () => {
    const dataDir = path.join(dir, 'running');
    const server = await startCli(['--data-dir', dataDir]);
    try {
      const created = await runCliOnce([
        'keys',
        'create',
        '--name',
        'first',
        '--role',
        'admin',
        '--data-dir',
        dataDir,
      ]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /^sl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
      assert.match(created.stderr, /through the running server/);
      const key = created.stdout.trim();
      const id = key.split('_')[1]!;
      // The new key is an admin key of the running server.
      const listedByKey = await fetch(`${server.baseUrl}/api/v1/admin/keys`, {
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(listedByKey.status, 200);

      const listed = await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^${id}\\s+first\\s+admin\\s`, 'm'));

      const revoked = await runCliOnce(['keys', 'revoke', id, '--data-dir', dataDir]);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal(revoked.stdout, `revoked ${id}\n`);
      const unknown = await runCliOnce(['keys', 'revoke', 'nope', '--data-dir', dataDir]);
      assert.equal(unknown.code, 2);
      const refused = await fetch(`${server.baseUrl}/api/v1/admin/keys`, {
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(refused.status, 401);
    } finally {
      await stopCli(server);
    }
    // Stopped: keys works on the store directly and lists the command line's one key.
    const offline = await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
    assert.equal(offline.code, 0, offline.stderr);
    const cliKeys = offline.stdout.split('\n').filter((line) => line.includes('streamlines-cli'));
    assert.equal(cliKeys.length, 1);
  });

  test('every run on a data dir reuses its one command-line key; a revoked one is replaced', async () => {
    const dataDir = path.join(dir, 'restarts');
    const sessionPath = path.join(dataDir, CLI_SESSION_FILE);
    const cliKeyLines = async () => {
      const listed = await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
      assert.equal(listed.code, 0, listed.stderr);
      return listed.stdout.split('\n').filter((line) => line.includes('streamlines-cli'));
    };
    const keyIds: string[] = [];
    for (let run = 0; run < 3; run++) {
      const server = await startCli(['--data-dir', dataDir]);
      try {
        const session = await runningSession(dataDir);
        keyIds.push(session.keyId);
        // The session works: keys goes through this server with it.
        const listed = await runCliOnce(['keys', 'list', '--data-dir', dataDir]);
        assert.equal(listed.code, 0, listed.stderr);
        assert.match(listed.stdout, new RegExp(`^${session.keyId}\\s+streamlines-cli.*\\s-$`, 'm'));
      } finally {
        await stopCli(server);
      }
      // Stopped: the file keeps the key, not the address, so keys does not try a server that is gone.
      const kept = JSON.parse(await readFile(sessionPath, 'utf8')) as Record<string, unknown>;
      assert.equal(kept.url, undefined);
      assert.equal(kept.keyId, keyIds[run]);
      assert.equal((await stat(sessionPath)).mode & 0o777, 0o600);
    }
    assert.deepEqual(keyIds, [keyIds[0], keyIds[0], keyIds[0]], 'one key for every run');
    const lines = await cliKeyLines();
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /\s-$/, 'and it is active');

    // Revoked by hand: the next run replaces it, and the list keeps the revoked one as history.
    const revoked = await runCliOnce(['keys', 'revoke', keyIds[0]!, '--data-dir', dataDir]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const server = await startCli(['--data-dir', dataDir]);
    try {
      const session = await runningSession(dataDir);
      assert.notEqual(session.keyId, keyIds[0]);
      assert.equal((await adminRequest(server.baseUrl, session.key)).status, 200);
    } finally {
      await stopCli(server);
    }
    assert.equal((await cliKeyLines()).length, 2);
  });
});

/** The session a server on `dataDir` writes once it listens (a stopped one leaves no address). */
async function runningSession(dataDir: string): Promise<CliSession> {
  let session: CliSession | undefined;
  await waitUntil(async () => {
    session = await readCliSession(dataDir);
    return session !== undefined;
  }, `${CLI_SESSION_FILE} of the server on ${dataDir}`);
  return session!;
}

/** The status of an admin request to the running server with `key`. */
async function adminRequest(baseUrl: string, key: string): Promise<Response> {
  return fetch(`${baseUrl}/api/v1/admin/keys`, { headers: { authorization: `Bearer ${key}` } });
}

test('formatKeyTable aligns columns and shows - for an active key', () => {
  const table = formatKeyTable([
    { id: 'a1', name: 'dashboard', role: 'read', createdAt: 0, revokedAt: null },
    { id: 'b2', name: 'ops', role: 'admin', createdAt: 86_400_000, revokedAt: 86_400_001 },
  ]);
  assert.equal(
    table,
    [
      'ID  NAME       ROLE   CREATED                   REVOKED',
      'a1  dashboard  read   1970-01-01T00:00:00.000Z  -',
      'b2  ops        admin  1970-01-02T00:00:00.000Z  1970-01-02T00:00:00.001Z',
    ].join('\n'),
  );
});

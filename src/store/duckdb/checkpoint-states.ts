/**
 * Where a file-backed DuckDB store keeps checkpoint states: in files beside the database
 * (`<db file>.state/<name>-<seq>.json`), while the `checkpoints` row keeps the offsets and the seq.
 * Rewriting a 155 KB state in the row with every commit grew the database file and DuckDB's native
 * memory by about one state per commit, with no bound (docs/operations.md, What grows, and why).
 *
 * Exactness after kill -9 rests on the order: the state file and its directory entry are made
 * durable first, then the transaction whose row names it commits. A crash in between leaves a file
 * no row names, which the next open removes; a row always names a file that was on disk before
 * the row was. An in-memory store, and rows written before this (schema migration 3), keep the
 * state inline in the row, and are read as such.
 */
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Checkpoint } from '../store.ts';
import { num } from './rows.ts';

/** The folder of a database file's checkpoint states. */
export function checkpointStateDir(databaseFile: string): string {
  return `${path.resolve(databaseFile)}.state`;
}

function stateFileName(name: string, seq: number): string {
  return `${encodeURIComponent(name)}-${seq}.json`;
}

/** The name and seq of a state file, or undefined for a file that is not one. */
function parseStateFileName(file: string): { name: string; seq: number } | undefined {
  const match = /^(.+)-(\d+)\.json$/.exec(file);
  if (match === null) return undefined;
  try {
    return { name: decodeURIComponent(match[1]!), seq: Number(match[2]) };
  } catch {
    return undefined;
  }
}

/** A checkpoint row names a state file that is not there: the data dir is incomplete. */
export class CheckpointStateMissingError extends Error {
  /** Stable, for logs and tests. */
  readonly code = 'checkpoint_state_missing';
  readonly file: string;

  constructor(checkpoint: string, file: string) {
    super(
      `checkpoint "${checkpoint}" names the state file ${file}, which is missing: the database was ` +
        `copied or restored without its ${path.basename(path.dirname(file))} folder. Restore that ` +
        `folder from the same backup as the database file; starting from nothing would count twice.`,
    );
    this.name = 'CheckpointStateMissingError';
    this.file = file;
  }
}

/** The state files of one store. Single writer: the store's write queue calls these in order. */
export class CheckpointStateFiles {
  readonly dir: string;
  /** Per name, the committed seqs still on disk, oldest first: the newest and the one before it. */
  readonly #kept = new Map<string, number[]>();
  #nextSeq = 1;

  constructor(databaseFile: string) {
    this.dir = checkpointStateDir(databaseFile);
  }

  /**
   * Takes the committed seq of every name with a state file, and removes every other file: the
   * orphans of a crash before their commit, and older states a crash left behind.
   */
  async open(committed: ReadonlyMap<string, number>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    let newest = 0;
    for (const seq of committed.values()) newest = Math.max(newest, seq);
    for (const file of await readdir(this.dir)) {
      const parsed = parseStateFileName(file);
      if (parsed !== undefined) newest = Math.max(newest, parsed.seq);
      if (parsed === undefined || committed.get(parsed.name) !== parsed.seq) {
        await rm(path.join(this.dir, file), { force: true, recursive: true });
      }
    }
    this.#kept.clear();
    for (const [name, seq] of committed) this.#kept.set(name, [seq]);
    // Never reuse a number a file had: a reader in an old snapshot must not find another state.
    this.#nextSeq = newest + 1;
  }

  /** The seq for the next state written. */
  nextSeq(): number {
    return this.#nextSeq++;
  }

  /** Writes a state and makes it and its directory entry durable, before the commit naming it. */
  async write(name: string, seq: number, json: string): Promise<void> {
    const handle = await open(path.join(this.dir, stateFileName(name, seq)), 'w');
    try {
      await handle.writeFile(json);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /**
   * After the commit naming `seq`: removes the name's states older than the one it replaced. That
   * one stays, because a reader whose snapshot began before the commit may still open it.
   */
  async committed(name: string, seq: number): Promise<void> {
    const kept = this.#kept.get(name) ?? [];
    kept.push(seq);
    this.#kept.set(name, kept);
    while (kept.length > 2) await this.discard(name, kept.shift()!);
  }

  /** Removes a state file (one whose commit failed, or an old one). A leftover is removed at open. */
  async discard(name: string, seq: number): Promise<void> {
    await rm(path.join(this.dir, stateFileName(name, seq)), { force: true }).catch(() => undefined);
  }
}

/** Which checkpoints `readCheckpoints` reads: one by name, or all whose name starts with a prefix. */
export type CheckpointFilter = { name: string } | { prefix: string };

/** A stored checkpoint with its name. */
export interface NamedCheckpoint extends Checkpoint {
  name: string;
}

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * The checkpoints of the database `connection` is on, as its snapshot sees them (so inside a
 * transaction they agree with the rows it reads), ordered by name, each state from the row or
 * from its file. Throws `CheckpointStateMissingError` when a named file is gone.
 */
export async function readCheckpoints(
  connection: DuckDBConnection,
  filter: CheckpointFilter,
): Promise<NamedCheckpoint[]> {
  const database = String((await connection.runAndReadAll('SELECT current_database()')).getRows()[0]![0]);
  const table = `"${database.replaceAll('"', '""')}".main.checkpoints`;
  const where =
    'name' in filter ? `name = ${sqlString(filter.name)}` : `starts_with(name, ${sqlString(filter.prefix)})`;
  let stateDir: string | undefined;
  const read = async (): Promise<NamedCheckpoint[]> => {
    const rows = (
      await connection.runAndReadAll(
        `SELECT name, offsets, state, state_seq FROM ${table} WHERE ${where} ORDER BY name`,
      )
    ).getRows();
    const checkpoints: NamedCheckpoint[] = [];
    for (const [name, offsets, inline, seq] of rows) {
      let json = inline as string | null;
      if (json === null) {
        stateDir ??= checkpointStateDir(
          String(
            (
              await connection.runAndReadAll(
                `SELECT path FROM duckdb_databases() WHERE database_name = ${sqlString(database)}`,
              )
            ).getRows()[0]![0],
          ),
        );
        const file = path.join(stateDir, stateFileName(name as string, num(seq!)));
        json = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') throw new CheckpointStateMissingError(name as string, file);
          throw error;
        });
      }
      checkpoints.push({
        name: name as string,
        offsets: JSON.parse(offsets as string) as Checkpoint['offsets'],
        state: JSON.parse(json),
      });
    }
    return checkpoints;
  };
  try {
    return await read();
  } catch (error) {
    // Outside a transaction, two commits between reading the row and opening its file remove the
    // file: read again, which sees the newer row. Inside one, the same row comes back and this throws.
    if (!(error instanceof CheckpointStateMissingError)) throw error;
    return read();
  }
}

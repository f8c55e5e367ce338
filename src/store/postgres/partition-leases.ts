/**
 * Which `process` member owns which partition of the topic, kept as PostgreSQL session advisory
 * locks on one dedicated connection: a lock lives exactly as long as its session, so a member that
 * crashes or loses its connection frees its partitions with no timeout to tune. The lease only
 * decides who should work on a partition; the checkpoint's `previous` offsets (store.ts) are what
 * stop a member that lost its lease without noticing from committing anything.
 *
 * Needs a direct session to the server: behind a transaction-pooling proxy (PgBouncer in
 * transaction mode) session locks do not hold.
 */
import { randomInt } from 'node:crypto';
import pg from 'pg';

export interface PartitionLeasesOptions {
  /** A libpq-style URL; passwords belong in PGPASSWORD (or ~/.pgpass), not in the URL. */
  url: string;
  /**
   * What the leases are for, e.g. `<schema>:<topic>`. Lock keys derive from it, so deployments
   * sharing a database do not collide.
   */
  scope: string;
  /** The connection dropped: every lease is gone, and this object is unusable (open a new one). */
  onLost?: (error: unknown) => void;
}

/**
 * FNV-1a over the UTF-8 bytes, as a signed 32-bit int (an advisory lock key half is int4).
 * Written by hand rather than PostgreSQL's hashtext(), which is internal and not promised to be
 * stable across server versions, and because members() must know the key on the client side;
 * ten lines are not worth a dependency.
 */
export function hashScope(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** Attempts at a fresh random member id when the drawn one is already taken in the scope. */
const MEMBER_ID_ATTEMPTS = 8;

/** Partition leases of one member in one scope, over session advisory locks. */
export class PostgresPartitionLeases {
  readonly #options: PartitionLeasesOptions;
  /** First key half of every member's lock in this scope; the second half is the member id. */
  readonly #membersKey: number;
  /** First key half of every partition lock in this scope; the second half is the partition. */
  readonly #partitionsKey: number;
  #client: pg.Client | undefined;
  readonly #owned = new Set<number>();
  #closing = false;
  #lost = false;
  /** This member's random id within the scope; known once `open()` resolved. */
  memberId: number | undefined;

  constructor(options: PartitionLeasesOptions) {
    this.#options = options;
    this.#membersKey = hashScope(`${options.scope}:members`);
    this.#partitionsKey = hashScope(`${options.scope}:partitions`);
  }

  /** Connects and takes this member's own lock, which is what `members()` counts. */
  async open(): Promise<void> {
    if (this.#client !== undefined) throw new Error('PostgresPartitionLeases is already open');
    // Opening again after a loss (and close()) starts a fresh session: a processor renews its
    // leases this way once the database is back.
    this.#lost = false;
    this.#closing = false;
    // keepAlive: a peer that vanished without a FIN is then noticed (and reported) eventually.
    const client = new pg.Client({
      connectionString: this.#options.url,
      application_name: 'streamlines-leases',
      keepAlive: true,
    });
    client.on('error', (error) => this.#onConnectionLost(error));
    client.on('end', () => this.#onConnectionLost(new Error('partition lease connection ended')));
    try {
      await client.connect();
      for (let attempt = 0; attempt < MEMBER_ID_ATTEMPTS; attempt++) {
        const id = randomInt(-(2 ** 31), 2 ** 31);
        if (await this.#tryLock(client, this.#membersKey, id)) {
          this.memberId = id;
          // Only now can the connection be "lost": a failure before this is open()'s rejection.
          this.#client = client;
          return;
        }
      }
      throw new Error(
        `no free member id in scope "${this.#options.scope}" after ${MEMBER_ID_ATTEMPTS} tries`,
      );
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  /** How many members of this scope are alive (hold their member lock), this one included. */
  async members(): Promise<number> {
    // An advisory lock on two int4 keys shows in pg_locks as classid = key1, objid = key2,
    // objsubid = 2; classid is an oid, so the signed key is passed as its unsigned value.
    const { rows } = await this.#requireClient().query<{ count: string }>(
      `SELECT count(*) AS count FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1::oid
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [String(this.#membersKey >>> 0)],
    );
    return Number(rows[0]?.count ?? 0);
  }

  /** Takes the partition's lease if no other member holds it; true when this member now holds it. */
  async tryAcquire(partition: number): Promise<boolean> {
    checkPartition(partition);
    const client = this.#requireClient();
    // Session advisory locks stack: taking one twice would need two unlocks, so never re-take.
    if (this.#owned.has(partition)) return true;
    const acquired = await this.#tryLock(client, this.#partitionsKey, partition);
    if (acquired) this.#owned.add(partition);
    return acquired;
  }

  /** Gives the partition's lease up so another member can take it; a no-op when not held. */
  async release(partition: number): Promise<void> {
    checkPartition(partition);
    const client = this.#requireClient();
    if (!this.#owned.has(partition)) return;
    await client.query('SELECT pg_advisory_unlock($1::int4, $2::int4)', [this.#partitionsKey, partition]);
    this.#owned.delete(partition);
  }

  /** The partitions this member holds, ascending; empty once the connection is lost. */
  owned(): number[] {
    return [...this.#owned].sort((a, b) => a - b);
  }

  /** Releases every lease and the member lock, and ends the connection. Safe to call twice. */
  async close(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    this.#closing = true;
    this.#client = undefined;
    this.#owned.clear();
    try {
      if (!this.#lost) await client.query('SELECT pg_advisory_unlock_all()');
    } finally {
      // Ending the session would release them anyway; the explicit unlock just does it first.
      await client.end().catch(() => undefined);
    }
  }

  #requireClient(): pg.Client {
    if (this.#lost) throw new Error('partition lease connection was lost: close() and open() again');
    if (this.#client === undefined) throw new Error('PostgresPartitionLeases is not open: call open() first');
    return this.#client;
  }

  async #tryLock(client: pg.Client, key1: number, key2: number): Promise<boolean> {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1::int4, $2::int4) AS locked',
      [key1, key2],
    );
    return rows[0]?.locked === true;
  }

  /** The session is gone, and its locks with it: report once, unless close() caused it. */
  #onConnectionLost(error: unknown): void {
    if (this.#client === undefined || this.#closing || this.#lost) return;
    this.#lost = true;
    this.#owned.clear();
    const onLost =
      this.#options.onLost ??
      ((cause: unknown) => process.emitWarning(`partition leases lost their connection: ${String(cause)}`));
    onLost(error);
  }
}

function checkPartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition > 0x7fffffff) {
    throw new Error(`partition must be an integer in [0, 2^31), got ${partition}`);
  }
}

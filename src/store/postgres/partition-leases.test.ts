import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { findOrStartPostgres, type NoPostgres, type TestPostgres } from '../../../test/support/postgres.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import { hashScope, PostgresPartitionLeases } from './partition-leases.ts';

test('hashScope is 32-bit FNV-1a, as a signed int', () => {
  // Reference values from the FNV spec's test vectors (draft-eastlake-fnv, FNV-1a 32):
  // "" -> 0x811c9dc5, "a" -> 0xe40c292c, "foobar" -> 0xbf9cf968; signed = unsigned - 2^32.
  assert.equal(hashScope(''), 0x811c9dc5 - 2 ** 32);
  assert.equal(hashScope('a'), 0xe40c292c - 2 ** 32);
  assert.equal(hashScope('foobar'), 0xbf9cf968 - 2 ** 32);
  // Multi-byte text hashes its UTF-8 bytes: python3 -c "
  // h=0x811c9dc5
  // for b in 'é'.encode(): h=((h^b)*0x01000193)&0xffffffff
  // print(h-2**32 if h>=2**31 else h)"  -> 513665217
  assert.equal(hashScope('é'), 513665217);
});

const real: TestPostgres | NoPostgres = await findOrStartPostgres();

describe('PostgresPartitionLeases', { skip: 'skip' in real ? real.skip : false }, () => {
  const server = real as TestPostgres;

  let scopeCounter = 0;
  /** A scope of its own per test, so tests never see each other's members or partitions. */
  const freshScope = (): string => `test:${process.pid}:${++scopeCounter}`;
  const opened: PostgresPartitionLeases[] = [];
  after(async () => {
    for (const leases of opened) await leases.close();
  });
  // Registered after the closes, so it runs after them: a server gone first would report every lease lost.
  after(() => server.stop());

  async function member(scope: string, onLost?: (error: unknown) => void): Promise<PostgresPartitionLeases> {
    const leases = new PostgresPartitionLeases({ url: server.url, scope, onLost });
    await leases.open();
    opened.push(leases);
    return leases;
  }

  async function sql(text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      return (await client.query(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  test('two members of one scope cannot both hold a partition', async () => {
    const scope = freshScope();
    const a = await member(scope);
    const b = await member(scope);
    assert.equal(await a.tryAcquire(3), true);
    assert.equal(await b.tryAcquire(3), false);
    // Re-acquiring what it holds is a no-op, so one release frees it.
    assert.equal(await a.tryAcquire(3), true);
    assert.equal(await b.tryAcquire(4), true);
    assert.equal(await a.tryAcquire(4), false);
    assert.deepStrictEqual(a.owned(), [3]);
    assert.deepStrictEqual(b.owned(), [4]);

    await a.release(3);
    assert.deepStrictEqual(a.owned(), []);
    assert.equal(await b.tryAcquire(3), true);
    assert.equal(await a.tryAcquire(3), false);
    assert.deepStrictEqual(b.owned(), [3, 4]);
    // Releasing what it does not hold leaves the holder alone.
    await a.release(4);
    assert.equal(await a.tryAcquire(4), false);
    await assert.rejects(a.tryAcquire(-1), /partition must be an integer/);
  });

  test('members() counts the live members: 1, then 2, then 1 after a close', async () => {
    const scope = freshScope();
    const a = await member(scope);
    assert.equal(await a.members(), 1);
    const b = await member(scope);
    assert.equal(await a.members(), 2);
    assert.equal(await b.members(), 2);
    assert.notEqual(a.memberId, b.memberId);
    // Partition locks share the database but not the members' key: they are not counted.
    await a.tryAcquire(0);
    await b.tryAcquire(1);
    assert.equal(await a.members(), 2);
    await b.close();
    assert.equal(await a.members(), 1);
    // And close() freed b's partition.
    assert.equal(await a.tryAcquire(1), true);
  });

  test("a killed member's backend frees its partitions for the others, and it is told", async () => {
    const scope = freshScope();
    const lost = Promise.withResolvers<unknown>();
    const victim = await member(scope, lost.resolve);
    assert.equal(await victim.tryAcquire(7), true);
    assert.equal(await victim.tryAcquire(8), true);
    const survivor = await member(scope);
    assert.equal(await survivor.tryAcquire(7), false);
    assert.equal(await survivor.members(), 2);

    // The backend holding partition 7 in this scope: (classid, objid) = (partitions key, 7).
    const holders = await sql(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
         AND classid = $1::oid AND objid = 7`,
      [String(hashScope(`${scope}:partitions`) >>> 0)],
    );
    assert.equal(holders.length, 1);
    await sql('SELECT pg_terminate_backend($1)', [holders[0]!.pid]);

    assert.match(String(await lost.promise), /terminat|ended/);
    assert.deepStrictEqual(victim.owned(), []);
    await assert.rejects(victim.tryAcquire(9), /connection was lost/);
    await waitUntil(async () => await survivor.tryAcquire(7), 'partition 7 to be free', 10_000, 50);
    assert.equal(await survivor.tryAcquire(8), true);
    assert.equal(await survivor.members(), 1);
    await victim.close(); // still safe after a loss
    // Renewing: a fresh session rejoins as a member and takes what is free, not what the survivor holds.
    await victim.open();
    assert.equal(await survivor.members(), 2);
    assert.equal(await victim.tryAcquire(7), false);
    assert.equal(await victim.tryAcquire(9), true);
    await victim.close();
  });

  test('two scopes do not interfere', async () => {
    const first = freshScope();
    const second = freshScope();
    const a = await member(first);
    const b = await member(second);
    const c = await member(second);
    assert.equal(await a.tryAcquire(0), true);
    assert.equal(await b.tryAcquire(0), true);
    assert.equal(await c.tryAcquire(0), false);
    assert.equal(await a.members(), 1);
    assert.equal(await b.members(), 2);
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { MemoryStore } from '../../store/memory/memory-store.ts';
import {
  createApiKey,
  generateApiKey,
  hashSecret,
  KeyInputError,
  KeyVerifier,
  parseApiKey,
  validateKeyInput,
} from './keys.ts';

async function openStore(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.open();
  return store;
}

/** A store that counts how often the verifier asks it. */
function countLookups(store: MemoryStore): { count: number } {
  const counter = { count: 0 };
  const find = store.findKeyByHash.bind(store);
  store.findKeyByHash = async (hash) => {
    counter.count++;
    return find(hash);
  };
  return counter;
}

describe('key format', () => {
  test('a generated key is sl_<16 hex>_<43 base64url>, and its hash is the sha256 of the secret', () => {
    const { id, key, hash } = generateApiKey();
    assert.match(key, /^sl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const parsed = parseApiKey(key);
    assert.equal(parsed?.id, id);
    assert.equal(key, `sl_${id}_${parsed?.secret}`);
    // Independently: node's sha256 of the secret's UTF-8 bytes, in hex.
    assert.equal(hash, createHash('sha256').update(Buffer.from(parsed!.secret, 'utf8')).digest('hex'));
    assert.equal(hashSecret(parsed!.secret), hash);
    assert.ok(!hash.includes(parsed!.secret));
    // 32 random bytes: two keys never share a secret.
    assert.notEqual(parseApiKey(generateApiKey().key)?.secret, parsed?.secret);
  });

  test('anything not exactly in that format is refused without looking it up', () => {
    const good = generateApiKey().key;
    for (const bad of [
      '',
      'sl_',
      good.slice(0, -1),
      `${good}A`,
      good.replace('sl_', 'sk_'),
      good.replace(/^sl_([0-9a-f]{16})/, (_, id: string) => `sl_${id.toUpperCase()}X`),
      ` ${good}`,
      good.replace(/_([^_]*)$/, '.$1'),
    ]) {
      assert.equal(parseApiKey(bad), undefined, bad);
    }
  });

  test('names and roles are checked with messages a user can act on', () => {
    assert.deepEqual(validateKeyInput('  dashboard ', 'read'), { name: 'dashboard', role: 'read' });
    assert.throws(() => validateKeyInput('', 'read'), KeyInputError);
    assert.throws(() => validateKeyInput('x', 'root'), /role must be one of read, admin, got "root"/);
    assert.throws(() => validateKeyInput('x'.repeat(101), 'read'), /at most 100/);
    assert.throws(() => validateKeyInput('a\nb', 'read'), /control characters/);
    assert.throws(() => validateKeyInput(undefined, 'read'), /needs a name/);
  });
});

describe('KeyVerifier', () => {
  test('verifies a created key, and refuses a wrong secret, a foreign id, and a revoked key', async () => {
    const store = await openStore();
    const reader = await createApiKey(store, { name: 'dashboard', role: 'read' }, 1_000);
    const admin = await createApiKey(store, { name: 'ops', role: 'admin' }, 2_000);
    const verifier = new KeyVerifier(store);
    assert.deepEqual(await verifier.verify(reader.key), {
      keyId: reader.record.id,
      name: 'dashboard',
      role: 'read',
    });
    assert.equal((await verifier.verify(admin.key))?.role, 'admin');

    const readerParts = parseApiKey(reader.key)!;
    const adminParts = parseApiKey(admin.key)!;
    // Right id, wrong secret: refused, cached or not.
    assert.equal(await verifier.verify(`sl_${readerParts.id}_${adminParts.secret.slice(0, -1)}A`), undefined);
    // A real secret under another key's id.
    assert.equal(await verifier.verify(`sl_${readerParts.id}_${adminParts.secret}`), undefined);
    assert.equal(await new KeyVerifier(store).verify(`sl_${readerParts.id}_${adminParts.secret}`), undefined);

    assert.equal(await store.revokeKey(reader.record.id), true);
    verifier.forget(reader.record.id);
    assert.equal(await verifier.verify(reader.key), undefined);
    assert.equal((await verifier.verify(admin.key))?.name, 'ops');
  });

  test('caches a verified key for the TTL: a revocation elsewhere applies once it expires', async () => {
    const store = await openStore();
    const lookups = countLookups(store);
    const { key, record } = await createApiKey(store, { name: 'dashboard', role: 'read' });
    let nowMs = 0;
    const verifier = new KeyVerifier(store, { cacheTtlMs: 5_000, now: () => nowMs });

    assert.equal((await verifier.verify(key))?.keyId, record.id);
    assert.equal((await verifier.verify(key))?.keyId, record.id);
    assert.equal(lookups.count, 1, 'the second request is served from the cache');

    // Another process revokes it in the store: still trusted until the cache entry expires.
    await store.revokeKey(record.id);
    nowMs = 4_999;
    assert.equal((await verifier.verify(key))?.keyId, record.id);
    assert.equal(lookups.count, 1);
    nowMs = 5_000;
    assert.equal(await verifier.verify(key), undefined);
    assert.equal(lookups.count, 2);
  });

  test('a malformed key never reaches the store', async () => {
    const store = await openStore();
    const lookups = countLookups(store);
    const verifier = new KeyVerifier(store);
    assert.equal(await verifier.verify('not-a-key'), undefined);
    assert.equal(await verifier.verify(`sl_${'0'.repeat(16)}_short`), undefined);
    assert.equal(lookups.count, 0);
  });

  test('the cache holds at most maxCachedKeys entries, dropping the oldest', async () => {
    const store = await openStore();
    const lookups = countLookups(store);
    const keys = await Promise.all(
      [0, 1, 2].map((i) => createApiKey(store, { name: `k${i}`, role: 'read' })),
    );
    const verifier = new KeyVerifier(store, { maxCachedKeys: 2 });
    for (const { key } of keys) await verifier.verify(key);
    assert.equal(lookups.count, 3);
    await verifier.verify(keys[2]!.key);
    await verifier.verify(keys[1]!.key);
    assert.equal(lookups.count, 3, 'the two newest are cached');
    await verifier.verify(keys[0]!.key);
    assert.equal(lookups.count, 4, 'the oldest was dropped');
  });
});

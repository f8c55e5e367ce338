/**
 * API keys: how they are made, stored and checked. A key reads `sl_<id>_<secret>`; the id is public
 * (it names the key in lists and logs), the secret is 32 random bytes and only its sha256 is stored.
 *
 * Why sha256 and not scrypt or argon2: those are for passwords, which are guessable and need a
 * slow hash. A 256-bit random secret cannot be guessed, so a fast hash already makes a leaked
 * table useless, and checking a key costs microseconds on every request instead of tens of ms.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, Store } from '../../store/store.ts';
import type { Principal, Role } from './require-role.ts';

export const KEY_PREFIX = 'sl_';
/** Bytes of randomness in the id (public) and in the secret. */
const ID_BYTES = 8;
const SECRET_BYTES = 32;
/** `sl_`, 16 hex digits, `_`, 43 base64url characters (32 bytes, unpadded). */
const KEY_PATTERN = /^sl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export const ROLES: readonly Role[] = ['read', 'admin'];
export const MAX_KEY_NAME_LENGTH = 100;

/** How long a verified key is trusted without asking the store again (revocation delay bound). */
export const DEFAULT_KEY_CACHE_TTL_MS = 5_000;
/** Verified keys kept in memory at most; beyond, the oldest are dropped. */
const DEFAULT_MAX_CACHED_KEYS = 10_000;

/** Bad input to key creation (name, role): a message the user can act on. */
export class KeyInputError extends Error {
  override readonly name = 'KeyInputError';
}

/** The id and secret of a well-formed key, or undefined for anything else. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(key);
  return match === null ? undefined : { id: match[1]!, secret: match[2]! };
}

/** The stored form of a secret: hex sha256. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A fresh key and the hash to store for it. */
export function generateApiKey(): { id: string; key: string; hash: string } {
  const id = randomBytes(ID_BYTES).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { id, key: `${KEY_PREFIX}${id}_${secret}`, hash: hashSecret(secret) };
}

/** Checks a name and role given by a user; throws KeyInputError saying what is wrong. */
export function validateKeyInput(name: unknown, role: unknown): { name: string; role: Role } {
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new KeyInputError('a key needs a name (what or who uses it), e.g. --name dashboard');
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused.
  if (name.length > MAX_KEY_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new KeyInputError(
      `key name must be at most ${MAX_KEY_NAME_LENGTH} characters without control characters`,
    );
  }
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw new KeyInputError(`key role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`);
  }
  return { name: name.trim(), role: role as Role };
}

/** Creates a key in the store and returns it: the only time the full key exists outside its holder. */
export async function createApiKey(
  store: Store,
  input: { name: unknown; role: unknown },
  nowMs: number = Date.now(),
): Promise<{ record: ApiKeyRecord; key: string }> {
  const { name, role } = validateKeyInput(input.name, input.role);
  const { id, key, hash } = generateApiKey();
  await store.createKey({ id, name, role, hash, createdAt: nowMs });
  return { record: { id, name, role, createdAt: nowMs, revokedAt: null }, key };
}

interface CachedKey {
  hash: Buffer;
  principal: Principal;
  expiresAtMs: number;
}

export interface KeyVerifierOptions {
  /** Default 5 000: a key revoked by another process stops working at most this long after. */
  cacheTtlMs?: number;
  maxCachedKeys?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/**
 * Turns a presented key into a Principal. Verified keys are cached by id for `cacheTtlMs`, so
 * most requests cost one sha256 and no store read; a revocation through this verifier (the
 * admin API) applies at once, one made elsewhere within `cacheTtlMs`.
 */
export class KeyVerifier {
  readonly #store: Store;
  readonly #cacheTtlMs: number;
  readonly #maxCachedKeys: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedKey>();
  #activeIds: ReadonlySet<string> = new Set();
  #activeIdsLoadedAtMs = Number.NEGATIVE_INFINITY;

  constructor(store: Store, options: KeyVerifierOptions = {}) {
    this.#store = store;
    this.#cacheTtlMs = options.cacheTtlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
    this.#maxCachedKeys = options.maxCachedKeys ?? DEFAULT_MAX_CACHED_KEYS;
    this.#now = options.now ?? Date.now;
  }

  /** The principal of a valid, active key; undefined for a malformed, unknown or revoked one. */
  async verify(key: string): Promise<Principal | undefined> {
    const parsed = parseApiKey(key);
    if (parsed === undefined) return undefined;
    const hashHex = hashSecret(parsed.secret);
    const hash = Buffer.from(hashHex, 'hex');
    const cached = this.#cache.get(parsed.id);
    if (cached !== undefined && cached.expiresAtMs > this.#now()) {
      // The id is public, so a guess at a cached id must not learn from the comparison time.
      return timingSafeEqual(cached.hash, hash) ? cached.principal : undefined;
    }
    this.#cache.delete(parsed.id);
    const record = await this.#store.findKeyByHash(hashHex);
    // A real secret under another key's id is a tampered key: refuse it.
    if (record === undefined || record.id !== parsed.id) return undefined;
    const principal: Principal = { keyId: record.id, name: record.name, role: record.role };
    if (this.#cache.size >= this.#maxCachedKeys) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    this.#cache.set(record.id, { hash, principal, expiresAtMs: this.#now() + this.#cacheTtlMs });
    return principal;
  }

  /**
   * Whether the key names an active key's id, answered from memory: the ids are reloaded from the
   * store at most once a second, when an unknown one comes. Lets a client that has sent too many
   * invalid keys still present its valid one, while its made-up keys cost no store lookup.
   */
  async hasActiveId(key: string): Promise<boolean> {
    const parsed = parseApiKey(key);
    if (parsed === undefined) return false;
    if (this.#cache.has(parsed.id) || this.#activeIds.has(parsed.id)) return true;
    const now = this.#now();
    if (now - this.#activeIdsLoadedAtMs < 1_000) return false;
    this.#activeIdsLoadedAtMs = now;
    const keys = await this.#store.listKeys();
    this.#activeIds = new Set(keys.filter((key) => key.revokedAt == null).map((key) => key.id));
    return this.#activeIds.has(parsed.id);
  }

  /** Drops a key from the cache, so its revocation applies to the very next request. */
  forget(id: string): void {
    this.#cache.delete(id);
  }
}

/**
 * How `streamlines keys` works while `streamlines run` holds the data dir (DuckDB takes one process):
 * the server creates an admin key for the command line at start, writes it with its address to
 * DATA/cli-session.json (readable by its owner only). Whoever can read the data dir can already stop
 * the server and manage keys, so this grants nothing new; it saves the restart. `keys` then talks to
 * /api/v1/admin/keys with that key.
 *
 * One key per data dir: when the server stops, the file keeps the key (without an address) and the
 * next run on the data dir reuses it, so `keys list` shows one `streamlines-cli` key however often
 * the server restarts, instead of one revoked key per run. A key that no longer works (revoked by
 * hand, or a memory store) is replaced.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createApiKey, KeyVerifier } from '../serve/auth/keys.ts';
import type { Store } from '../store/store.ts';

/** What the running server leaves for `streamlines keys` and `streamlines sql`. */
export interface CliSession {
  /** Base URL the command line can reach the server on, e.g. http://127.0.0.1:8080. */
  url: string;
  pid: number;
  keyId: string;
  key: string;
}

export const CLI_SESSION_FILE = 'cli-session.json';
const KEY_NAME = 'streamlines-cli (while the server runs)';

/** The session file's contents: a stopped server leaves the key without `url` and `pid`. */
type StoredSession = Partial<CliSession>;

async function readStoredSession(dataDir: string): Promise<StoredSession | undefined> {
  const text = await readFile(join(dataDir, CLI_SESSION_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as StoredSession) : undefined;
  } catch {
    return undefined;
  }
}

/** The session of the server running on `dataDir`, or undefined when there is none (or it is unreadable). */
export async function readCliSession(dataDir: string): Promise<CliSession | undefined> {
  const session = await readStoredSession(dataDir);
  if (typeof session?.url !== 'string' || typeof session.key !== 'string') return undefined;
  return session as CliSession;
}

async function writeSession(dataDir: string, session: StoredSession): Promise<void> {
  const path = join(dataDir, CLI_SESSION_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  // With a memory log and store nothing else creates the data dir.
  await mkdir(dataDir, { recursive: true });
  await writeFile(temporary, `${JSON.stringify(session)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** A URL to reach a server listening on `host:port` from this machine (wildcards mean loopback). */
export function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** The data dir's command-line key when it is still an active admin key of `store`. */
async function reusableKey(store: Store, stored: StoredSession | undefined) {
  if (typeof stored?.key !== 'string') return undefined;
  const principal = await new KeyVerifier(store).verify(stored.key).catch(() => undefined);
  return principal?.role === 'admin' ? { keyId: principal.keyId, key: stored.key } : undefined;
}

/**
 * Writes the session file with the data dir's command-line key (creating the key on first use).
 * Returns the function that takes the address out of the file when the server stops.
 */
export async function openCliSession(
  store: Store,
  dataDir: string,
  url: string,
): Promise<() => Promise<void>> {
  const stored = await readStoredSession(dataDir);
  let credentials = await reusableKey(store, stored);
  if (credentials === undefined) {
    if (typeof stored?.keyId === 'string') await store.revokeKey(stored.keyId).catch(() => false);
    const { record, key } = await createApiKey(store, { name: KEY_NAME, role: 'admin' });
    credentials = { keyId: record.id, key };
  }
  await writeSession(dataDir, { url, pid: process.pid, ...credentials });
  const kept = credentials;
  return async () => {
    await writeSession(dataDir, kept).catch(() => rm(join(dataDir, CLI_SESSION_FILE), { force: true }));
  };
}

/**
 * How `streamlines keys` works while `streamlines run` holds the data dir (DuckDB takes one process):
 * the server creates an admin key for the command line at start, writes it with its address to
 * DATA/cli-session.json (readable by its owner only), and revokes it when it stops. Whoever can read
 * the data dir can already stop the server and manage keys, so this grants nothing new; it saves the
 * restart. `keys` then talks to /api/v1/admin/keys with that key.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createApiKey } from '../serve/auth/keys.ts';
import type { Store } from '../store/store.ts';

/** What the running server leaves for `streamlines keys`. */
export interface CliSession {
  /** Base URL the command line can reach the server on, e.g. http://127.0.0.1:8080. */
  url: string;
  pid: number;
  keyId: string;
  key: string;
}

export const CLI_SESSION_FILE = 'cli-session.json';
const KEY_NAME = 'streamlines-cli (while the server runs)';

/** The session the server on `dataDir` left, or undefined when there is none (or it is unreadable). */
export async function readCliSession(dataDir: string): Promise<CliSession | undefined> {
  const text = await readFile(join(dataDir, CLI_SESSION_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as CliSession;
  } catch {
    return undefined;
  }
}

/** A URL to reach a server listening on `host:port` from this machine (wildcards mean loopback). */
export function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/**
 * Creates this run's command-line key (revoking one a killed run left behind) and writes the session
 * file. Returns the function that revokes the key and removes the file.
 */
export async function openCliSession(
  store: Store,
  dataDir: string,
  url: string,
): Promise<() => Promise<void>> {
  const stale = await readCliSession(dataDir);
  if (stale !== undefined) await store.revokeKey(stale.keyId).catch(() => false);
  const { record, key } = await createApiKey(store, { name: KEY_NAME, role: 'admin' });
  const session: CliSession = { url, pid: process.pid, keyId: record.id, key };
  const path = join(dataDir, CLI_SESSION_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  // With a memory log and store nothing else creates the data dir.
  await mkdir(dataDir, { recursive: true });
  await writeFile(temporary, `${JSON.stringify(session)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
  return async () => {
    await store.revokeKey(record.id).catch(() => false);
    await rm(path, { force: true });
  };
}

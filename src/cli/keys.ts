/**
 * `streamlines keys create|list|revoke`: manage API keys in the data dir's store. With the server
 * stopped it opens the store itself; while `run` holds the data dir (DuckDB allows one writer
 * process) it asks the server's `/api/v1/admin/keys` with the key the server left for it.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { DataDirLockedError, lockDataDir } from '../pipeline/data-dir-lock.ts';
import { createApiKey, KeyInputError } from '../serve/auth/keys.ts';
import { createStore } from '../store/registry.ts';
import type { ApiKeyRecord, Store } from '../store/store.ts';
import { parseCommandLine } from './args.ts';
import { CLI_SESSION_FILE, type CliSession, readCliSession } from './cli-session.ts';

export const KEYS_USAGE = `Usage: streamlines keys <create|list|revoke> [options]

  keys create --name NAME --role read|admin   prints the new key once, on stdout
  keys list                                   id, name, role, created, revoked
  keys revoke ID                              the key stops working

Options:
  --config FILE     YAML or JSON config (its store section says where the keys live)
  --data-dir DIR    the data dir (default ./data)

Works with the server stopped, and while "streamlines run" runs on the same data dir: then the
command asks the server (through the admin key it keeps for the command line in
DATA/cli-session.json), so the first admin key needs no restart.
`;

/** A mistake in the command line or its input: printed without a stack trace, exit code 2. */
export class KeysUsageError extends Error {
  override readonly name = 'KeysUsageError';
}

/** Runs `keys ...` (argv after `keys`); throws KeysUsageError, ConfigError or DataDirLockedError. */
export async function runKeysCommand(argv: string[]): Promise<void> {
  const { positionals, values } = parseCommandLine(
    'streamlines keys',
    argv,
    {
      config: { type: 'string' },
      'data-dir': { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
    },
    true,
  );
  const [action, ...rest] = positionals;
  if (values.help || action === undefined || action === 'help') {
    process.stdout.write(KEYS_USAGE);
    return;
  }
  if (action !== 'create' && action !== 'list' && action !== 'revoke') {
    throw new KeysUsageError(`unknown keys command "${action}"\n\n${KEYS_USAGE}`);
  }
  if (action === 'revoke' ? rest.length !== 1 : rest.length !== 0) {
    throw new KeysUsageError(
      action === 'revoke' ? 'keys revoke needs exactly one key id' : `unexpected argument "${rest[0]}"`,
    );
  }
  if (action !== 'create' && (values.name !== undefined || values.role !== undefined)) {
    throw new KeysUsageError('--name and --role go with keys create');
  }

  const config = await loadConfig(values.config);
  if (config.store.type === 'memory') {
    throw new KeysUsageError(
      'the configured store is "memory", which keeps nothing between runs: keys need store.type duckdb',
    );
  }
  const dataDir = resolve(values['data-dir'] ?? './data');
  const locked = await lockDataDir(dataDir).then(
    (unlock) => ({ unlock }),
    (error: unknown) => {
      if (!(error instanceof DataDirLockedError)) throw error;
      return { error };
    },
  );
  if ('error' in locked) {
    // The server holds the store; it left a key and its address for us (cli-session.ts).
    const session = await readCliSession(dataDir);
    if (session === undefined) {
      throw new DataDirLockedError(
        `${locked.error.message}\nIt left no ${CLI_SESSION_FILE} (a server of another role, or an older version): stop the server first, or use /api/v1/admin/keys with an admin key.`,
      );
    }
    await runRemote(session, action, rest[0], values.name, values.role);
    return;
  }
  const unlock = locked.unlock;
  const store = createStore(config.store, dataDir);
  try {
    await store.open();
    if (action === 'create') await createKey(store, values.name, values.role);
    else if (action === 'list') await listKeys(store);
    else await revokeKey(store, rest[0]!);
  } finally {
    await store.close();
    await unlock();
  }
}

async function createKey(store: Store, name: string | undefined, role: string | undefined): Promise<void> {
  if (name === undefined || role === undefined) {
    throw new KeysUsageError('keys create needs --name NAME and --role read|admin');
  }
  try {
    const { record, key } = await createApiKey(store, { name, role });
    // The key alone on stdout, so `KEY=$(streamlines keys create ...)` captures just it.
    process.stdout.write(`${key}\n`);
    process.stderr.write(
      `Created ${record.role} key ${record.id} (${record.name}). It is shown only this once: store it now. ` +
        'Send it as "Authorization: Bearer KEY" (or ?apiKey=KEY on a WebSocket).\n',
    );
  } catch (error) {
    if (error instanceof KeyInputError) throw new KeysUsageError(error.message);
    throw error;
  }
}

const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

/** Aligned columns: the table `keys list` prints. */
export function formatKeyTable(keys: readonly ApiKeyRecord[]): string {
  const rows = [
    ['ID', 'NAME', 'ROLE', 'CREATED', 'REVOKED'],
    ...keys.map((key) => [key.id, key.name, key.role, iso(key.createdAt), iso(key.revokedAt)]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '),
    )
    .join('\n');
}

async function listKeys(store: Store): Promise<void> {
  const keys = await store.listKeys();
  if (keys.length === 0) {
    process.stderr.write('no keys yet: create one with "streamlines keys create --name NAME --role admin"\n');
    return;
  }
  process.stdout.write(`${formatKeyTable(keys)}\n`);
}

async function revokeKey(store: Store, id: string): Promise<void> {
  if (!(await store.revokeKey(id))) {
    const known = (await store.listKeys()).find((key) => key.id === id);
    throw new KeysUsageError(
      known === undefined
        ? `no key with id "${id}" (see: streamlines keys list)`
        : `key ${id} is already revoked`,
    );
  }
  process.stdout.write(`revoked ${id}\n`);
}

/** `keys create|list|revoke` through the running server's admin routes; same output as offline. */
async function runRemote(
  session: CliSession,
  action: 'create' | 'list' | 'revoke',
  id: string | undefined,
  name: string | undefined,
  role: string | undefined,
): Promise<void> {
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${session.url}/api/v1/admin/keys${path}`, {
      method,
      headers: {
        authorization: `Bearer ${session.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    }).catch((error: unknown) => {
      throw new Error(
        `the data dir is in use, and the server it names (${session.url}) does not answer: ${(error as Error).message}`,
      );
    });
    const answer = (await response.json().catch(() => ({}))) as Record<string, unknown> & {
      error?: { code: string; message: string };
    };
    if (response.status === 400 || response.status === 404) {
      throw new KeysUsageError(answer.error?.message ?? `HTTP ${response.status}`);
    }
    if (!response.ok) {
      throw new Error(`${session.url} answered ${response.status}: ${answer.error?.message ?? ''}`);
    }
    return answer;
  };
  if (action === 'create') {
    if (name === undefined || role === undefined) {
      throw new KeysUsageError('keys create needs --name NAME and --role read|admin');
    }
    const created = await call('POST', '', { name, role });
    process.stdout.write(`${String(created.key)}\n`);
    process.stderr.write(
      `Created ${String(created.role)} key ${String(created.id)} (${String(created.name)}) through the running server at ${session.url}. ` +
        'It is shown only this once: store it now. Send it as "Authorization: Bearer KEY".\n',
    );
    return;
  }
  if (action === 'list') {
    const { keys } = (await call('GET', '')) as unknown as { keys: ApiKeyRecord[] };
    process.stdout.write(`${formatKeyTable(keys)}\n`);
    return;
  }
  await call('DELETE', `/${encodeURIComponent(id!)}`);
  process.stdout.write(`revoked ${id}\n`);
}

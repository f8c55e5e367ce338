/**
 * `streamlines keys create|list|revoke`: manage API keys in the data dir's store, with the server
 * stopped (DuckDB allows one writer process). While it runs, use `/api/v1/admin/keys` instead.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { DataDirLockedError, lockDataDir } from '../pipeline/data-dir-lock.ts';
import { createApiKey, KeyInputError } from '../serve/auth/keys.ts';
import { createStore } from '../store/registry.ts';
import type { ApiKeyRecord, Store } from '../store/store.ts';

export const KEYS_USAGE = `Usage: streamlines keys <create|list|revoke> [options]

  keys create --name NAME --role read|admin   prints the new key once, on stdout
  keys list                                   id, name, role, created, revoked
  keys revoke ID                              the key stops working

Options:
  --config FILE     YAML or JSON config (its store section says where the keys live)
  --data-dir DIR    the data dir (default ./data)

Stop the server first: the store accepts one process at a time. While it runs, use
POST/GET/DELETE /api/v1/admin/keys with an admin key instead.
`;

/** A mistake in the command line or its input: printed without a stack trace, exit code 2. */
export class KeysUsageError extends Error {
  override readonly name = 'KeysUsageError';
}

/** Runs `keys ...` (argv after `keys`); throws KeysUsageError, ConfigError or DataDirLockedError. */
export async function runKeysCommand(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'data-dir': { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
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
  const unlock = await lockDataDir(dataDir).catch((error: unknown) => {
    if (!(error instanceof DataDirLockedError)) throw error;
    throw new DataDirLockedError(
      `${error.message}\nThe store accepts one process at a time (DuckDB allows one writer): stop the server first, or manage keys while it runs with /api/v1/admin/keys and an admin key.`,
    );
  });
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

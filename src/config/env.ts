/**
 * Configuration from the environment, for every key: `STREAMLINES_<PATH>=value`, where PATH is the key's
 * path with `__` between levels and each level in SNAKE_CASE (`STREAMLINES_STORE__URL`,
 * `STREAMLINES_LOG__TOPIC_PREFIX`, `STREAMLINES_FEEDS__0__TYPE`). Values are read as YAML scalars or
 * flow collections (`9092`, `true`, `[a:9092, b:9092]`, `10s`). They override the file, and are
 * validated with it. Variables whose first level is not a top-level config key (`STREAMLINES_KAFKA_PASSWORD`,
 * `STREAMLINES_TEST_...`) are not config and are left alone.
 */
import { parse as parseYaml } from 'yaml';

export const ENV_PREFIX = 'STREAMLINES_';

/** One override taken from the environment: the variable and the config path it set. */
export interface EnvOverride {
  variable: string;
  path: (string | number)[];
}

/** `TOPIC_PREFIX` → `topicPrefix`; a level of digits is an array index. */
function levelKey(level: string): string | number {
  if (/^\d+$/.test(level)) return Number(level);
  return level.toLowerCase().replace(/_([a-z0-9])/g, (_, char: string) => char.toUpperCase());
}

function parseValue(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

/**
 * Returns `raw` (the decoded file, not changed) with the environment's overrides applied, and the
 * overrides it took. `topLevelKeys` are the config's own keys (what decides that a variable is config).
 */
export function applyEnvOverrides(
  raw: unknown,
  topLevelKeys: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { value: unknown; overrides: EnvOverride[] } {
  // A file that is not an object is left for validation to reject.
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    return { value: raw, overrides: [] };
  }
  const value = structuredClone((raw ?? {}) as Record<string, unknown>);
  const overrides: EnvOverride[] = [];
  const variables = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX))
    .sort(); // FEEDS__0 before FEEDS__0__TYPE: a whole value first, then its keys
  for (const variable of variables) {
    const path = variable.slice(ENV_PREFIX.length).split('__').map(levelKey);
    if (path.some((level) => level === '') || !topLevelKeys.includes(String(path[0]))) continue;
    setPath(value, path, parseValue(env[variable] ?? ''));
    overrides.push({ variable, path });
  }
  return { value, overrides };
}

function setPath(target: Record<string, unknown>, path: (string | number)[], leaf: unknown): void {
  let node: Record<string | number, unknown> = target;
  for (let index = 0; index < path.length - 1; index++) {
    const level = path[index]!;
    const nextIsIndex = typeof path[index + 1] === 'number';
    const current = node[level];
    if (current === null || typeof current !== 'object') node[level] = nextIsIndex ? [] : {};
    node = node[level] as Record<string | number, unknown>;
  }
  node[path[path.length - 1]!] = leaf;
}

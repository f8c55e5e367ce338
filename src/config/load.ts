/** Reads a config file (YAML or JSON), validates it once at the edge, and explains what is wrong. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { applyEnvOverrides, type EnvOverride } from './env.ts';
import { type Config, configSchema } from './schema.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates a decoded config object; throws ConfigError listing every problem with its key path. */
export function parseConfig(value: unknown, origin = 'config'): Config {
  const result = configSchema.safeParse(value ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => describeIssue(issue));
  throw new ConfigError(`${origin} is invalid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
}

/**
 * Loads and validates a YAML or JSON config file (JSON is valid YAML), with the environment's
 * `STREAMLINES_...` overrides (src/config/env.ts) applied on top.
 */
export async function loadConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  return (await loadConfigWithOverrides(path, env)).config;
}

/** loadConfig, also telling which environment variables overrode the file. */
export async function loadConfigWithOverrides(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ config: Config; overrides: EnvOverride[] }> {
  const raw = path === undefined ? {} : await readConfigFile(path);
  const { value, overrides } = applyEnvOverrides(raw, Object.keys(configSchema.shape), env);
  const origin = path === undefined ? 'config' : `config file ${path}`;
  const withEnv =
    overrides.length === 0 ? origin : `${origin} with ${overrides.map((o) => o.variable).join(', ')}`;
  return { config: parseConfig(value, withEnv), overrides };
}

async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  const at = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`);
  }
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // Report the branch that got furthest rather than "invalid input".
    const best = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
    return best.flatMap((inner) => describeIssue({ ...inner, path: [...issue.path, ...inner.path] }));
  }
  return [`${at || '(root)'}: ${issue.message}`];
}

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? String(part) : `.${String(part)}`;
  }
  return text;
}

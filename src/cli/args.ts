/**
 * Command-line parsing shared by every subcommand: node:util parseArgs, with errors a user can act on
 * (the nearest known flag for a typo, and where the help is).
 */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

/** A command-line mistake: printed without a stack trace, exit code 2 (`runCli` keys on the code). */
export class ArgsError extends Error {
  override readonly name = 'ArgsError';
  readonly code = 'ERR_PARSE_ARGS_STREAMLINES';
}

/**
 * Edit distance with adjacent transpositions (optimal string alignment): `--nmae` is one edit from
 * `--name`, as a typist would count it.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1]!;
      let best = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/** The known name closest to `given` when it is plausibly a typo of it (at most a third of it differs). */
export function nearest(given: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of known) {
    const distance = editDistance(given, name);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  const prefixOf = best !== undefined && given.length >= 2 && best.startsWith(given);
  return best !== undefined && (bestDistance <= Math.max(1, Math.floor(best.length / 3)) || prefixOf)
    ? best
    : undefined;
}

/**
 * parseArgs for `command` (e.g. "streamlines run"), with `--help`/`-h` added. An unknown flag, a
 * missing value or a stray argument becomes an ArgsError naming the nearest flag and the help.
 */
export function parseCommandLine<T extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
) {
  const withHelp = { ...options, help: { type: 'boolean', short: 'h' } } as const;
  try {
    return parseArgs({ args, options: withHelp, allowPositionals, strict: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === undefined || !code.startsWith('ERR_PARSE_ARGS')) throw error;
    throw new ArgsError(
      `${explain(error as Error, code, Object.keys(withHelp), args)}\nSee: ${command} --help`,
    );
  }
}

function explain(error: Error, code: string, flags: string[], args: string[]): string {
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const given = /'(-{1,2}[^']*)'/.exec(error.message)?.[1] ?? args.find((arg) => arg.startsWith('-')) ?? '';
    const name = given.replace(/^-+/, '').split('=')[0]!;
    const suggestion = name.length >= 2 ? nearest(name, flags) : undefined;
    return `unknown option ${given}${suggestion === undefined ? '' : `: did you mean --${suggestion}?`}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /^Option '(-{1,2}[\w-]+)/.exec(error.message)?.[1];
    return flag === undefined ? error.message : `${flag} needs a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return error.message.replace(/^Unexpected argument '([^']*)'.*/s, 'unexpected argument "$1"');
  }
  return error.message;
}

/**
 * A reader for the Prometheus text format, enough for tests and tools to look samples up:
 * `name{label="value",...} number` lines, comments skipped, labels kept in the order written.
 */

/** Samples by series: `name` or `name{a="x",b="y"}` exactly as exposed. */
export type Samples = Map<string, number>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)(?: \d+)?$/;

/** Every sample of an exposition. */
export function parseExposition(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

/** The value of one series; throws when it is missing so a typo fails loudly. */
export function sampleValue(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const entries = Object.entries(labels);
  const key =
    entries.length === 0
      ? name
      : `${name}{${entries.map(([label, value]) => `${label}="${value}"`).join(',')}}`;
  const value = samples.get(key);
  if (value === undefined) throw new Error(`no sample ${key}`);
  return value;
}

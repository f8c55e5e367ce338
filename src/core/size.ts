/** Parses a size such as `1GiB`, `256MiB`, `64KiB`, `512B`, `1.5GiB` or a plain number of bytes; undefined if invalid. */
export function parseSizeBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$/.exec(value);
  if (!match) return undefined;
  const unitBytes = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[match[2] ?? 'B'] ?? 1;
  const bytes = Math.round(Number(match[1]) * unitBytes);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Number and time formatting shared by the pages. */

/**
 * Formatters made once: `toLocaleString` with options builds a new Intl.NumberFormat per call
 * (a fraction of a millisecond each), which made a scrolled list of alerts miss frames.
 */
const priceFormats = new Map<number, Intl.NumberFormat>();
function priceFormat(digits: number): Intl.NumberFormat {
  let format = priceFormats.get(digits);
  if (format === undefined) {
    format = new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    priceFormats.set(digits, format);
  }
  return format;
}
const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });
const plainFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/** A price with as many decimals as its size needs: 65 012.5, 3 201.25, 0.5213. */
export function formatPrice(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
  return priceFormat(digits).format(value);
}

/** A count or volume, compact above ten thousand. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return Math.abs(value) >= 10_000 ? compactFormat.format(value) : plainFormat.format(value);
}

export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${value >= 0 ? '+' : ''}${(value * 100).toFixed(2)}%`;
}

/** UTC time as YYYY-MM-DD HH:MM:SS. */
export function formatTime(ts: number | null | undefined): string {
  if (ts === null || ts === undefined) return '—';
  return new Date(ts).toISOString().replace('T', ' ').slice(0, 19);
}

/** How long ago `ts` was, e.g. "3 s", "2 min", "—". */
export function formatAge(ts: number | null | undefined, now: number): string {
  if (ts === null || ts === undefined) return '—';
  const seconds = Math.max(0, (now - ts) / 1000);
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h`;
}

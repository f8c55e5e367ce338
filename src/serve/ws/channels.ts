/** WebSocket channel names: `ticks:SYM`, `candles:SYM:INTERVAL` and `alerts`. */
import { INTERVALS, isInterval } from '../../core/records.ts';
import { SYMBOL_PATTERN } from '../params.ts';

/** A channel name in canonical form, or why it is not one. */
export type ChannelResult = { ok: true; channel: string } | { ok: false; message: string };

function describe(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw.slice(0, 100)) : typeof raw;
}

function normaliseSymbol(raw: string, channel: unknown): ChannelResult {
  const symbol = raw.trim().toUpperCase();
  if (!SYMBOL_PATTERN.test(symbol)) {
    return {
      ok: false,
      message: `channel ${describe(channel)}: symbol must match ${SYMBOL_PATTERN.source} after trimming and upper-casing`,
    };
  }
  return { ok: true, channel: symbol };
}

/**
 * Validates a channel and puts it in the form the pipeline publishes (symbol trimmed and
 * upper-cased), so `ticks:btcusdt` and `ticks:BTCUSDT` are the same subscription.
 */
export function parseChannel(raw: unknown): ChannelResult {
  if (typeof raw !== 'string')
    return { ok: false, message: `channel must be a string, got ${describe(raw)}` };
  if (raw === 'alerts') return { ok: true, channel: raw };
  if (raw.startsWith('ticks:')) {
    const symbol = normaliseSymbol(raw.slice('ticks:'.length), raw);
    return symbol.ok ? { ok: true, channel: `ticks:${symbol.channel}` } : symbol;
  }
  if (raw.startsWith('candles:')) {
    // Symbols may contain ':' themselves, so the interval is whatever follows the last one.
    const lastColon = raw.lastIndexOf(':');
    const interval = raw.slice(lastColon + 1);
    if (lastColon < 'candles:'.length || !isInterval(interval)) {
      return {
        ok: false,
        message: `channel ${describe(raw)}: expected candles:SYMBOL:INTERVAL with INTERVAL one of ${INTERVALS.join(', ')}`,
      };
    }
    const symbol = normaliseSymbol(raw.slice('candles:'.length, lastColon), raw);
    return symbol.ok ? { ok: true, channel: `candles:${symbol.channel}:${interval}` } : symbol;
  }
  return {
    ok: false,
    message: `channel ${describe(raw)}: expected ticks:SYMBOL, candles:SYMBOL:INTERVAL or alerts`,
  };
}

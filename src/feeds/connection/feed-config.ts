/**
 * Config pieces shared by the feed schemas, so every feed spells its name, symbols and reconnect timing the
 * same way (and the generated config docs read the same for each).
 */
import { z } from 'zod';
import { durationField } from '../../core/config-fields.ts';

/** A strictly positive duration (ms or a string such as "30s"), parsed to ms. */
export const durationMs = durationField.refine((ms) => ms > 0, 'expected a positive duration');

/** The optional `name` field of a feed of type `type`. */
export function feedNameField(type: string) {
  return z.string().min(1).optional().describe(`Feed name (default "${type}").`);
}

/** The optional `symbols` field of a feed that falls back to the top-level `symbols`. */
export function feedSymbolsField(description: string) {
  return z.array(z.string().min(1)).min(1).optional().describe(description);
}

/** The reconnect backoff fields of a feed that reconnects, with its defaults in ms. */
export function backoffFields(defaults: { initialBackoff: number; maxBackoff: number }) {
  return {
    initialBackoff: durationMs.default(defaults.initialBackoff).describe('First reconnect delay cap.'),
    maxBackoff: durationMs.default(defaults.maxBackoff).describe('Largest reconnect delay.'),
  };
}

/** The `staleAfter` description of feeds whose watchdog needs nothing more said. */
export const STALE_AFTER_DESCRIPTION = 'Nothing received for this long: reconnect.';

/** The environment a keyed WebSocket feed reads: its key from `env`, jitter from `random`, lines to `log`. */
export interface LiveFeedEnvironment {
  env?: Record<string, string | undefined>;
  random?: () => number;
  /** Where connection log lines go (default: stderr). */
  log?: (line: string) => void;
}

/** A feed's symbols (its own or the top-level ones), trimmed and upper-cased; throws when there are none. */
export function configuredSymbols(
  type: string,
  symbols: readonly string[] | undefined,
  defaultSymbols: readonly string[],
): string[] {
  const configured = [...(symbols ?? defaultSymbols)].map((symbol) => symbol.trim().toUpperCase());
  if (configured.length === 0) throw new Error(`${type} feed: no symbols configured`);
  return configured;
}

/**
 * The symbol list of a feed that keeps it itself (synthetic, CoinGecko): the Feed interface's symbol
 * methods over it, the configured symbols (or the defaults) trimmed and upper-cased to start with.
 */
export abstract class SymbolListFeed {
  protected symbolList: string[];

  constructor(type: string, symbols: readonly string[] | undefined, defaultSymbols: readonly string[]) {
    this.symbolList = configuredSymbols(type, symbols, defaultSymbols);
  }

  symbols(): string[] {
    return [...this.symbolList];
  }

  addSymbol(symbol: string): void {
    if (!this.symbolList.includes(symbol)) this.symbolList = [...this.symbolList, symbol];
  }

  removeSymbol(symbol: string): void {
    this.symbolList = this.symbolList.filter((existing) => existing !== symbol);
  }
}

/** The `WsConnection` timing a reconnecting feed's config and environment set. */
export function connectionTiming(
  config: { staleAfter: number; initialBackoff: number; maxBackoff: number },
  environment: Pick<LiveFeedEnvironment, 'random' | 'log'>,
): { staleAfterMs: number; initialBackoffMs: number; maxBackoffMs: number } & Pick<
  LiveFeedEnvironment,
  'random' | 'log'
> {
  return {
    staleAfterMs: config.staleAfter,
    initialBackoffMs: config.initialBackoff,
    maxBackoffMs: config.maxBackoff,
    ...(environment.random ? { random: environment.random } : {}),
    ...(environment.log ? { log: environment.log } : {}),
  };
}

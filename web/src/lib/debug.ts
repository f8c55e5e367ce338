/**
 * `window.__streamlines`: what the pages drew, for the browser tests (they compare it with the API)
 * and for anyone poking at the dashboard from the console.
 */
export interface DebugState {
  /** Symbol and interval of the chart on screen. */
  chart?: {
    symbol: string;
    interval: string;
    candles: () => readonly unknown[];
    /** Logical range of bars on screen (0 = the first bar), null before any. */
    visibleRange: () => { from: number; to: number } | null;
    liveUpdates: number;
  };
  /** Per symbol: the last price shown on its card. */
  cards: Record<string, { lastPrice: number; lastTs: number; updates: number }>;
  /** Live messages received, per channel kind. */
  received: { ticks: number; candles: number; alerts: number };
}

declare global {
  interface Window {
    __streamlines: DebugState;
  }
}

export const debug: DebugState = { cards: {}, received: { ticks: 0, candles: 0, alerts: 0 } };
window.__streamlines = debug;

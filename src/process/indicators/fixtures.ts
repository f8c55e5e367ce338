/**
 * Reference data shared by the indicator tests: StockCharts' classic RSI example closes, and values for
 * them computed independently in Python (the script is in each test that uses them).
 */
export const CLOSES = [
  44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.1, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28, 46.28,
  46.0, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78,
];

/** Asserts |actual - expected| <= 1e-12 relative, the precision the tests hold indicators to. */
export function assertClose(actual: number | null, expected: number, message?: string): void {
  if (actual === null || Math.abs(actual - expected) > 1e-12 * Math.max(1, Math.abs(expected))) {
    throw new Error(`${message ?? 'value'}: expected ${expected}, got ${actual}`);
  }
}

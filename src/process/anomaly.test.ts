import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AnomalyConfig,
  AnomalyDetector,
  anomalyMessage,
  DEFAULT_ANOMALY,
  resolveAnomaly,
} from './anomaly.ts';

const CONFIG: AnomalyConfig = {
  enabled: true,
  zScore: 6,
  halfLifeTicks: 35,
  warmupTicks: 100,
  cooldownTicks: 100,
  minStdDev: 1e-4,
};

// Expected z-scores from an independent Python model of the documented algorithm:
//   def run(returns, alpha=1 - 2 ** (-1 / 35), thr=6, warm=100, cool=100, floor=1e-4):
//       n = 0; m = 0.0; v = 0.0; c = 0; out = []
//       for r in returns:
//           a = None
//           if n >= warm:
//               if c > 0: c -= 1
//               else:
//                   z = (r - m) / max(math.sqrt(v), floor)
//                   if abs(z) >= thr: a = z; c = cool
//           if n == 0: m = r
//           else: d = r - m; inc = alpha * d; m += inc; v = (1 - alpha) * (v + d * inc)
//           if n < warm: n += 1
//           out.append(a)
//       return out
function run(returns: number[], config = CONFIG): [number, number][] {
  const detector = new AnomalyDetector();
  const parameters = resolveAnomaly(config);
  const fired: [number, number][] = [];
  returns.forEach((logReturn, i) => {
    const z = detector.observe(logReturn, parameters);
    if (z !== null) fired.push([i, z]);
  });
  return fired;
}

function alternating(length: number): number[] {
  return Array.from({ length }, (_, i) => (i % 2 === 0 ? 0.001 : -0.001));
}

test('a 5% jump after 100 returns of +/-0.1% fires with the reference z-score', () => {
  const fired = run([...alternating(100), 0.05]);
  assert.equal(fired.length, 1);
  assert.equal(fired[0]![0], 100);
  assert.ok(Math.abs(fired[0]![1] - 50.29386964348359) < 1e-9);
});

test('no alert during warm-up, however large the move', () => {
  assert.deepEqual(run([...alternating(50), 0.5, ...alternating(49)]), []);
});

test('cool-down suppresses a second jump within 100 returns, not after', () => {
  const returns = alternating(300);
  for (const i of [100, 150, 201]) returns[i] = 0.05;
  const fired = run(returns);
  assert.deepEqual(
    fired.map(([i]) => i),
    [100, 201],
  );
  assert.ok(Math.abs(fired[1]![1] - 9.760764934688305) < 1e-9);
});

test('after a flat spell the std dev floor (1e-4) decides: 5 bp is z = 5 (quiet), 7 bp is z = 7', () => {
  assert.deepEqual(run([...new Array(100).fill(0), 5e-4]), []);
  const fired = run([...new Array(100).fill(0), 7e-4]);
  assert.equal(fired.length, 1);
  assert.ok(Math.abs(fired[0]![1] - 7) < 1e-9);
});

test('a negative jump fires with a negative z; the knobs are honoured', () => {
  const strict = { ...CONFIG, zScore: 1000 };
  assert.deepEqual(run([...alternating(100), -0.05], strict), []);
  const fired = run([...alternating(100), -0.05]);
  assert.ok(fired[0]![1] < -6);
});

test('snapshot/restore through JSON continues identically', () => {
  const returns = alternating(300);
  returns[120] = 0.05;
  returns[260] = -0.05;
  const expected = run(returns);
  const first = new AnomalyDetector();
  const fired: [number, number][] = [];
  returns.slice(0, 150).forEach((r, i) => {
    const z = first.observe(r, resolveAnomaly(CONFIG));
    if (z !== null) fired.push([i, z]);
  });
  const resumed = new AnomalyDetector();
  resumed.restore(JSON.parse(JSON.stringify(first.snapshot())));
  returns.slice(150).forEach((r, i) => {
    const z = resumed.observe(r, resolveAnomaly(CONFIG));
    if (z !== null) fired.push([i + 150, z]);
  });
  assert.deepEqual(fired, expected);
  assert.equal(expected.length, 2);
});

test('the message states the move in percent and the z-score', () => {
  assert.equal(
    anomalyMessage('BTCUSDT', Math.log(1.05), 50.26),
    'Unusual move on BTCUSDT: +5.00% in one tick (z = 50.3)',
  );
});

test('defaults (from the config schema): off, a floor of 1 bp; alpha halves a weight every halfLifeTicks', () => {
  assert.equal(DEFAULT_ANOMALY.enabled, false);
  assert.equal(resolveAnomaly(DEFAULT_ANOMALY).minStdDev, 1e-4);
  // (1 - alpha)^h = 1/2 by definition of the half-life h.
  assert.ok(Math.abs((1 - resolveAnomaly(CONFIG).alpha) ** 35 - 0.5) < 1e-12);
});

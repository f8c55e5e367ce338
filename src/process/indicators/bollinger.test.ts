import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClose, CLOSES } from '../../../test/fixtures/indicator-closes.ts';
import { Bollinger } from './bollinger.ts';

// Expected values from Python:
//   for i in range(19, len(CLOSES)):
//       w = CLOSES[i-19:i+1]; m = sum(w)/20; sd = math.sqrt(sum((x-m)**2 for x in w)/20)
//       print(m + 2*sd, m, m - 2*sd)
const EXPECTED: [number, number, number][] = [
  [47.115328221650216, 45.409, 43.70267177834978],
  [47.16873977866332, 45.5025, 43.83626022133667],
  [47.17332404639805, 45.610499999999995, 44.04767595360194],
  [47.100396242646745, 45.6885, 44.27660375735325],
  [46.90973074455837, 45.8305, 44.751269255441635],
  [46.73602100813846, 45.903000000000006, 45.069978991861554],
];

test('bollinger(20, 2) is null for 19 values, then middle +/- 2 population std devs', () => {
  const bands = new Bollinger(20, 2);
  CLOSES.forEach((close, i) => {
    bands.add(close);
    const result = bands.getResult();
    if (i < 19) {
      assert.equal(result, null, `i=${i}`);
      return;
    }
    const [upper, middle, lower] = EXPECTED[i - 19]!;
    assert.ok(result);
    assertClose(result.upper, upper, `upper i=${i}`);
    assertClose(result.middle, middle, `middle i=${i}`);
    assertClose(result.lower, lower, `lower i=${i}`);
  });
});

test('bands keep full precision on large prices with a tiny spread', () => {
  // Values 2^20 + {0, 2^-10} alternating are exact in binary: by hand the mean is 2^20 + 2^-11 and the
  // population std dev exactly 2^-11. A running sum of squares loses it: (2^20)^2 = 2^40 has an ulp of
  // 2^-12, far coarser than the variance 2^-22.
  const bands = new Bollinger(20, 2);
  for (let i = 0; i < 20; i++) bands.add(2 ** 20 + (i % 2) * 2 ** -10);
  const result = bands.getResult();
  assert.ok(result);
  assert.equal(result.middle, 2 ** 20 + 2 ** -11);
  assert.equal(result.upper, 2 ** 20 + 2 ** -11 + 2 * 2 ** -11);
  assert.equal(result.lower, 2 ** 20 + 2 ** -11 - 2 * 2 ** -11);
});

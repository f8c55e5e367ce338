/**
 * Smoke test of `npm run bench`: the quick run completes and its last line is the JSON object
 * docs/benchmarks.md describes. Not a speed test: performance is never asserted here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runToExit } from '../support/cli.ts';

const ROOT = join(import.meta.dirname, '../..');

/** Rates and sizes: a stage that ran did some work, so each is > 0. */
const POSITIVE_KEYS = [
  'parseTicksPerSec',
  'ingestTicksPerSec',
  'processTicksPerSec',
  'storeRowsPerSec',
  'pipelineTicksPerSec',
  'pipelineVsParse',
  'restCandlesP50Ms',
  'restCandlesP99Ms',
  'restDayCandlesP50Ms',
  'restDayCandlesP99Ms',
  'rssStartMb',
  'rssEndMb',
  'idleRssAt1kTicksMb',
];
/**
 * Numbers that may truly read 0, so only required to be >= 0: latencies from integer Date.now() stamps
 * on both sides (a sub-millisecond delivery reads 0; also checked to be ordered), and the CPU share of
 * an almost idle process.
 */
const NON_NEGATIVE_KEYS = ['wsLatencyP50Ms', 'wsLatencyP99Ms', 'wsLatencyMaxMs', 'idleCpuPctAt1kTicks'];

test('bench --quick --json ends with one JSON line holding every required number', {
  timeout: 300_000,
}, async () => {
  const { code, stdout, stderr } = await runToExit(process.execPath, [
    join(ROOT, 'bench/main.ts'),
    '--quick',
    '--json',
  ]);
  assert.equal(code, 0, `bench exited with ${code}:\n${stderr}`);

  const lines = stdout.trimEnd().split('\n');
  const result = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  for (const key of POSITIVE_KEYS) {
    const value = result[key];
    assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${key} = ${String(value)}`);
  }
  for (const key of NON_NEGATIVE_KEYS) {
    const value = result[key];
    assert.ok(typeof value === 'number' && Number.isFinite(value) && value >= 0, `${key} = ${String(value)}`);
  }
  const n = (key: string) => result[key] as number;
  assert.ok(n('wsLatencyP50Ms') <= n('wsLatencyP99Ms') && n('wsLatencyP99Ms') <= n('wsLatencyMaxMs'));
  assert.ok(n('restCandlesP50Ms') <= n('restCandlesP99Ms'));
  // The ratio is the two rates divided, rounded to 4 places (bench/main.ts).
  assert.ok(Math.abs(n('pipelineVsParse') - n('pipelineTicksPerSec') / n('parseTicksPerSec')) < 1e-3);
  // Every line of the replay went through the pipeline: accepted ticks are most of the 100 000 lines.
  assert.ok(n('pipelineAccepted') > 90_000 && n('pipelineAccepted') <= 100_000);
  assert.equal(result.quick, true);

  const machine = result.machine as Record<string, unknown>;
  assert.ok(typeof machine.cpus === 'number' && machine.cpus >= 1);
  assert.equal(typeof machine.cpuModel, 'string');
  assert.ok(typeof machine.totalMemoryMb === 'number' && machine.totalMemoryMb > 0);
  assert.match(String(result.node), /^v\d+\./);
  assert.ok(!Number.isNaN(Date.parse(String(result.date))));
});

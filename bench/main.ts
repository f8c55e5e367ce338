/**
 * `npm run bench`: throughput of the embedded pipeline, always next to the cost of JSON.parse alone on
 * the same input (DESIGN §6), so the ratio holds on a noisy machine.
 *
 *   npm run bench [-- --ticks N] [-- --json]
 *
 * The last line of output with --json is one JSON object with the numbers.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getJson, startCli, stopCli } from '../test/support/cli.ts';
import { writeReplay } from '../test/support/generate-ticks.ts';

const { values } = parseArgs({
  options: { ticks: { type: 'string', default: '1000000' }, json: { type: 'boolean', default: false } },
});
const ticks = Number(values.ticks);
const say = (text: string) => {
  if (!values.json) process.stdout.write(`${text}\n`);
  else process.stderr.write(`${text}\n`);
};

const dir = await mkdtemp(join(tmpdir(), 'streamlines-bench-'));
try {
  const replay = join(dir, 'ticks.ndjson');
  say(`generating ${ticks.toLocaleString()} ticks...`);
  await writeReplay(replay, {
    count: ticks,
    seed: 1,
    hostile: false,
    symbols: Array.from({ length: 100 }, (_, i) => `SYM${i}`),
  });

  const text = await readFile(replay, 'utf8');
  const lines = text.split('\n').filter((line) => line !== '');
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    let sink = 0;
    for (const line of lines) sink += (JSON.parse(line) as { ts: number }).ts & 1;
    best = Math.min(best, performance.now() - started);
    if (sink < 0) say('');
  }
  const parseTicksPerSec = lines.length / (best / 1000);
  say(`JSON.parse alone: ${Math.round(parseTicksPerSec).toLocaleString()} ticks/s (${best.toFixed(0)} ms)`);

  const cli = await startCli(['--replay', replay, '--speed', 'max', '--data-dir', join(dir, 'data')]);
  const started = performance.now();
  let stats: { drained: boolean; accepted: number } = { drained: false, accepted: 0 };
  while (!stats.drained) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    stats = (await getJson<typeof stats>(cli.baseUrl, '/api/v1/stats')).body;
  }
  const pipelineMs = performance.now() - started;
  await stopCli(cli);
  const pipelineTicksPerSec = lines.length / (pipelineMs / 1000);
  say(
    `pipeline (replay --speed max into DuckDB): ${Math.round(pipelineTicksPerSec).toLocaleString()} ticks/s (${(pipelineMs / 1000).toFixed(1)} s, ${stats.accepted.toLocaleString()} accepted)`,
  );
  const result = {
    ticks: lines.length,
    parseTicksPerSec: Math.round(parseTicksPerSec),
    pipelineTicksPerSec: Math.round(pipelineTicksPerSec),
    pipelineVsParse: Number((pipelineTicksPerSec / parseTicksPerSec).toFixed(4)),
  };
  say(`pipeline / JSON.parse: ${(result.pipelineVsParse * 100).toFixed(1)} %`);
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

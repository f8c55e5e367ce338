/**
 * The cost of a modest live market alone: `npx node bench/idle-cpu.ts [ticksPerSecond] [seconds]`
 * runs `streamlines run` with a synthetic feed over 100 symbols (default 1 000 ticks/s, 60 s after
 * 10 s of warm-up) and prints the CLI process's CPU (% of one core) and RSS. `npm run bench`
 * reports the same as `idleCpuPctAt1kTicks` and `idleRssAt1kTicksMb`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureIdleCpu } from './cli-stages.ts';
import { SYMBOLS } from './micro.ts';

const ticksPerSecond = Number(process.argv[2] ?? 1_000);
const seconds = Number(process.argv[3] ?? 60);
const dir = await mkdtemp(join(tmpdir(), 'streamlines-idle-'));
try {
  const result = await measureIdleCpu({
    dir,
    symbols: SYMBOLS,
    ticksPerSecond,
    warmupMs: 10_000,
    measureMs: seconds * 1000,
  });
  process.stdout.write(`${JSON.stringify({ ticksPerSecond, seconds, ...result })}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

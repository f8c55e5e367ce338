/**
 * The live soak (issue #11): `npx node bench/live-soak.ts [ticksPerSecond] [seconds] [everySeconds]`
 * runs `streamlines run` on a synthetic market over 100 symbols (default 20 000 ticks/s for 1 800 s)
 * and prints, every `everySeconds` (default 60), one JSON line: ticks accepted, RSS split into V8 heap
 * (used / reserved), native and file-backed memory, and the data dir's size (lake aside). It is the
 * table in docs/operations.md (Live soak); run it alone, under `nice`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, startCli, stopCli } from '../test/support/cli.ts';
import { SYMBOLS } from './micro.ts';
import { duBytes, machineInfo, memoryBreakdown } from './util.ts';

const ticksPerSecond = Number(process.argv[2] ?? 20_000);
const seconds = Number(process.argv[3] ?? 1_800);
const everySeconds = Number(process.argv[4] ?? 60);
const dir = await mkdtemp(join(tmpdir(), 'streamlines-live-soak-'));
try {
  const config = join(dir, 'live.json');
  await writeFile(
    config,
    JSON.stringify({ symbols: SYMBOLS, feeds: [{ type: 'synthetic', ticksPerSecond, symbols: SYMBOLS }] }),
  );
  const dataDir = join(dir, 'data');
  const cli = await startCli(['--config', config, '--data-dir', dataDir]);
  const started = performance.now();
  try {
    for (let at = everySeconds; at <= seconds; at += everySeconds) {
      await sleep(started + at * 1000 - performance.now());
      const stats = (await getJson<{ accepted: number }>(cli.baseUrl, '/api/v1/stats')).body;
      const memory = await memoryBreakdown(cli.child.pid!, cli.baseUrl);
      const diskMb = Math.round(((await duBytes(dataDir, ['lake'])) / 2 ** 20) * 10) / 10;
      process.stdout.write(`${JSON.stringify({ s: at, accepted: stats.accepted, ...memory, diskMb })}\n`);
    }
  } finally {
    await stopCli(cli);
  }
  process.stdout.write(`${JSON.stringify({ ticksPerSecond, seconds, machine: machineInfo() })}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

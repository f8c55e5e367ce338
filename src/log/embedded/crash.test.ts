import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { batchSize } from '../../../test/fixtures/embedded-log-crash-writer.ts';
import { partitionFor } from '../log.ts';
import { EmbeddedLog } from './embedded-log.ts';

const FIXTURE = path.join(import.meta.dirname, '../../../test/fixtures/embedded-log-crash-writer.ts');
const PARTITIONS = 3;
const ROUNDS = 6;

let dir = '';
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'streamlines-log-crash-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs the writer until it has appended at least once, then SIGKILLs it after a random delay. */
async function runAndKill(delayMs: number): Promise<void> {
  const child = spawn(process.execPath, [FIXTURE, dir, String(PARTITIONS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => resolve());
    child.on('exit', (code) => reject(new Error(`writer exited with ${code} before appending`)));
  });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
}

/** Asserts the log holds exactly batches 0..n, each whole and in order, where n is the producer state. */
async function assertWholeBatches(): Promise<{ batches: number; repaired: boolean }> {
  const log = new EmbeddedLog({ dir });
  await log.open();
  try {
    const state = (await log.producerState('ticks')) as { batch: number };
    assert.ok(Number.isInteger(state.batch) && state.batch >= 0);
    // What the writer appended for batches 0..n, per partition in order.
    const expected: string[][] = Array.from({ length: PARTITIONS }, () => []);
    for (let batch = 0; batch <= state.batch; batch++) {
      for (let j = 0; j < batchSize(batch); j++) {
        expected[partitionFor(`S${j % 5}`, PARTITIONS)]!.push(`${batch}/${j}`);
      }
    }
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const got: string[] = [];
      for (;;) {
        const records = await log.read<{ batch: number; j: number }>('ticks', partition, got.length, 50_000);
        if (records.length === 0) break;
        for (const record of records) got.push(`${record.value.batch}/${record.value.j}`);
      }
      // Compared as one string: deepEqual on ~100k-element arrays prints unreadably on failure.
      assert.equal(got.length, expected[partition]!.length, `partition ${partition} record count`);
      assert.equal(got.join(','), expected[partition]!.join(','), `partition ${partition} contents`);
    }
    return { batches: state.batch + 1, repaired: log.repairs.length > 0 };
  } finally {
    await log.close();
  }
}

it(`keeps exactly the whole batches up to the producer state across ${ROUNDS} kill -9s`, async () => {
  let previous = 0;
  const report: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await runAndKill(Math.floor(Math.random() * 150));
    const { batches, repaired } = await assertWholeBatches();
    // Each run resumes after the last recorded batch and appends at least one more before the kill.
    assert.ok(batches > previous, `round ${round}: ${batches} batches after ${previous}`);
    previous = batches;
    report.push(`${batches}${repaired ? ' (torn tail cut)' : ''}`);
  }
  process.stderr.write(`crash rounds, batches after each kill: ${report.join(', ')}\n`);
});

/**
 * Child process of crash.test.ts: appends batches to an EmbeddedLog as fast as it can until killed.
 * Resumes after the batch recorded in the producer state, as a real producer would after a crash.
 * Usage: node crash-writer.fixture.ts <dir> <partitions>
 */
import { EmbeddedLog } from './embedded-log.ts';

/** Records in batch `n`: varied, so some frames are large enough to be cut mid-write. */
export function batchSize(n: number): number {
  return 1 + ((n * 7919) % 3000);
}

if (import.meta.main) {
  const [dir, partitions] = process.argv.slice(2);
  const log = new EmbeddedLog({ dir: dir!, partitions: Number(partitions), segmentBytes: 1 << 20 });
  await log.open();
  const state = (await log.producerState('ticks')) as { batch: number } | undefined;
  let batch = state === undefined ? 0 : state.batch + 1;
  let announced = false;
  for (;;) {
    const size = batchSize(batch);
    const records = Array.from({ length: size }, (_, j) => ({
      key: `S${j % 5}`,
      value: { batch, j, price: 100 + j / 8, pad: 'x'.repeat(j % 40) },
    }));
    await log.append('ticks', records, { batch });
    if (!announced) {
      process.stdout.write('ready\n');
      announced = true;
    }
    batch++;
  }
}

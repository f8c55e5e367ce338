import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LogUnderTest, TailDamage } from './conformance.ts';
import { logConformance } from './conformance.ts';
import { EmbeddedLog, listSegmentFiles } from './embedded/embedded-log.ts';
import { MemoryLog } from './memory/memory-log.ts';

for (const partitions of [1, 3]) {
  logConformance(`memory, ${partitions} partition(s)`, async () => {
    const log = new MemoryLog({ partitions });
    await log.open();
    return { log, cleanup: async () => {} };
  });
}

/** Cuts the last frame short (a crash mid-write) or appends a whole frame whose CRC is wrong. */
async function damageTail(dir: string, topic: string, damage: TailDamage): Promise<void> {
  const files = listSegmentFiles(dir, topic);
  const sizes = await Promise.all(files.map(async (file) => (await fs.stat(file)).size));
  const last = sizes.findLastIndex((size) => size > 0);
  const file = files[last]!;
  if (damage === 'truncate-last-frame') {
    await fs.truncate(file, sizes[last]! - 3);
  } else {
    const garbage = Buffer.alloc(8 + 20, 0x5a);
    garbage.writeUInt32LE(20, 0); // a plausible length that fits in the file...
    garbage.writeUInt32LE(0xdeadbeef, 4); // ...but a CRC that does not match
    await fs.appendFile(file, garbage);
  }
}

const embeddedVariants = [
  { label: '1 partition', options: { partitions: 1 } },
  { label: '3 partitions', options: { partitions: 3 } },
  // Tiny segments and cache: every test also exercises segment rolling and reads from disk.
  {
    label: '3 partitions, 600-byte segments, 4-record cache',
    options: { partitions: 3, segmentBytes: 600, cacheRecords: 4 },
  },
];
for (const { label, options } of embeddedVariants) {
  logConformance(
    `embedded, ${label}`,
    async (): Promise<LogUnderTest> => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'streamlines-log-'));
      const open = async () => {
        const log = new EmbeddedLog({ dir, ...options });
        await log.open();
        return log;
      };
      return {
        log: await open(),
        reopen: open,
        corruptTail: (topic, damage) => damageTail(dir, topic, damage),
        cleanup: () => fs.rm(dir, { recursive: true, force: true }),
      };
    },
    { durable: true },
  );
}

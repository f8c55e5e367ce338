import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RetentionSettings, RetentionUnderTest, TailDamage } from './conformance.ts';
import { logConformance } from './conformance.ts';
import { EmbeddedLog, type EmbeddedLogOptions, listSegmentFiles } from './embedded/embedded-log.ts';
import type { Log } from './log.ts';
import { MemoryLog } from './memory/memory-log.ts';
import { SpoolingLog } from './spool/spooling-log.ts';

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
/**
 * An embedded log (optionally behind a spooling log, as `streamlines ingest` runs its log) on a fresh
 * directory, with reopen, tail damage and, given settings, retention.
 */
async function embeddedUnderTest(
  options: Omit<EmbeddedLogOptions, 'dir'>,
  spooled: boolean,
  retention?: RetentionSettings,
): Promise<RetentionUnderTest> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'streamlines-log-'));
  let embedded: EmbeddedLog;
  const open = async (): Promise<Log> => {
    embedded = new EmbeddedLog({
      dir: path.join(dir, 'log'),
      ...options,
      ...(retention && { ...retention, retentionCheckMs: 3_600_000 }),
    });
    const log = spooled
      ? new SpoolingLog({ inner: embedded, dir: path.join(dir, 'spool'), maxBytes: 1 << 20 })
      : embedded;
    await log.open();
    return log;
  };
  return {
    log: await open(),
    reopen: open,
    corruptTail: (topic, damage) => damageTail(path.join(dir, 'log'), topic, damage),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
    enforce: () => void embedded.enforceRetention(),
    bytesHeld: (topic) => embedded.diskUsage().topics[topic]?.bytes ?? 0,
  };
}

for (const { label, options } of embeddedVariants) {
  logConformance(`embedded, ${label}`, () => embeddedUnderTest(options, false), {
    durable: true,
    retention: (settings) =>
      embeddedUnderTest({ ...options, segmentBytes: settings.segmentBytes }, false, settings),
  });
}

// The spooling log over an embedded one: what it adds (sequence numbers in the producer state, the
// spool) must keep every promise of the log behind it, retention included.
for (const partitions of [1, 3]) {
  logConformance(
    `spooling over embedded, ${partitions} partition(s)`,
    () => embeddedUnderTest({ partitions }, true),
    {
      durable: true,
      retention: (settings) =>
        embeddedUnderTest({ partitions, segmentBytes: settings.segmentBytes }, true, settings),
    },
  );
}

/**
 * Where the lake keeps what: `<lake>/<kind>/date=YYYY-MM-DD/part-<n>.parquet`, Hive-style, one part
 * per writer pass and day. A pass's parts are first written under `<lake>/_tmp/` and renamed into
 * place, so a reader never sees half a file.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** The four kinds of rows the lake keeps, each its own table of Parquet files. */
export const LAKE_KINDS = ['ticks', 'candles', 'indicators', 'alerts'] as const;
export type LakeKind = (typeof LAKE_KINDS)[number];

export const DAY_MS = 86_400_000;

/** The folder a pass writes into before renaming its parts into place. */
export const TMP_DIR = '_tmp';

/** The UTC day start (ms) of a timestamp. */
export function dayStartMs(ts: number): number {
  return ts - (((ts % DAY_MS) + DAY_MS) % DAY_MS);
}

/** `2026-01-02` for any ms within that UTC day. */
export function dayLabel(dayMs: number): string {
  return new Date(dayMs).toISOString().slice(0, 10);
}

/** The day start (ms) a `date=YYYY-MM-DD` folder stands for, or undefined for any other name. */
export function dayOfFolder(name: string): number | undefined {
  const match = /^date=(\d{4}-\d{2}-\d{2})$/.exec(name);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

export function partFileName(part: number): string {
  return `part-${String(part).padStart(8, '0')}.parquet`;
}

/** The pass number of a part file's name, or undefined for any other name. */
export function partOfFile(name: string): number | undefined {
  const match = /^part-(\d+)\.parquet$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function partPath(lakePath: string, kind: LakeKind, dayMs: number, part: number): string {
  return path.join(lakePath, kind, `date=${dayLabel(dayMs)}`, partFileName(part));
}

/** One Parquet file of the lake. */
export interface LakeFile {
  kind: LakeKind;
  dayMs: number;
  part: number;
  path: string;
}

/** Every part file of a kind, ascending by day then part; a missing folder is an empty lake. */
export async function listLakeFiles(lakePath: string, kind: LakeKind): Promise<LakeFile[]> {
  const files: LakeFile[] = [];
  const kindDir = path.join(lakePath, kind);
  for (const folder of await readdir(kindDir).catch(() => [] as string[])) {
    const dayMs = dayOfFolder(folder);
    if (dayMs === undefined) continue;
    for (const name of await readdir(path.join(kindDir, folder)).catch(() => [] as string[])) {
      const part = partOfFile(name);
      if (part !== undefined) files.push({ kind, dayMs, part, path: path.join(kindDir, folder, name) });
    }
  }
  return files.sort((a, b) => a.dayMs - b.dayMs || a.part - b.part);
}

/**
 * Removes what a pass that was never recorded left behind (a crash between its renames and its
 * record): parts numbered `fromPart` or above, and the temp folder.
 */
export async function removeUnrecordedParts(lakePath: string, fromPart: number): Promise<number> {
  let removed = 0;
  await rm(path.join(lakePath, TMP_DIR), { recursive: true, force: true });
  for (const kind of LAKE_KINDS) {
    for (const file of await listLakeFiles(lakePath, kind)) {
      if (file.part >= fromPart) {
        await rm(file.path, { force: true });
        removed++;
      }
    }
  }
  return removed;
}

/**
 * A small disk for full-disk tests: a tmpfs of a given size (mounting needs root, so tests skip
 * themselves elsewhere), filled with a ballast file so that only a little room is left. Removing
 * the ballast is "space returns".
 */
import { execFileSync } from 'node:child_process';
import { rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Mounts a tmpfs of `bytes` at `dir` (an existing directory); false when this machine does not let us. */
export function mountTmpfs(dir: string, bytes: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function unmount(dir: string): void {
  execFileSync('umount', [dir]);
}

/** Fills the file system of `dir` until `leaveBytes` are free; resolves to the function that frees it again. */
export async function fillDisk(dir: string, leaveBytes: number): Promise<() => Promise<void>> {
  const free = await statfs(dir);
  const ballast = join(dir, 'ballast');
  await writeFile(ballast, Buffer.alloc(Math.max(0, free.bavail * free.bsize - leaveBytes)));
  return () => rm(ballast);
}

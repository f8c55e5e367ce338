/**
 * One process per data directory: a second one would interleave appends to the same log. The lock
 * file holds the owner's pid; a lock left behind by a killed process (kill -9) is taken over.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

/** Takes the lock of `dataDir`; returns the function that releases it. */
export async function lockDataDir(dataDir: string, waitForOwnerMs = 3_000): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, 'streamlines.lock');
  // An owner that is just dying (killed with its parent) gets a moment to go before we give up.
  const deadline = Date.now() + waitForOwnerMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        if (Date.now() >= deadline) {
          throw new DataDirLockedError(
            `data dir ${dataDir} is in use by process ${owner}; stop it or choose another --data-dir`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      await rm(path, { force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process whose parent has not reaped it yet still answers signal 0: a zombie holds nothing.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

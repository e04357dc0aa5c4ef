import { promises as fsp } from 'node:fs';

/**
 * fsync a directory, so that files created, renamed or removed in it survive a crash
 * (the WAL's segments, the backend's defrag swap, a snapshot install).
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

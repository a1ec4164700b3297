import { open } from "node:fs/promises";

/**
 * fsyncs a file, or a directory to make the renames in it durable (Linux allows fsync on a
 * read-only descriptor, which is the only kind a directory gives).
 */
export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

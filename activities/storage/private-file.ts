import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/**
 * Runs `use` with the path of a fresh file holding `contents`, readable by this user only (0600 in a
 * 0700 directory), and removes it right after. This is how secrets reach commands that read them
 * from a file (`virsh secret-set-value --file`, qemu's `--object secret,file=`): never argv, and not
 * stdin either, since Node's child stdio are sockets, which `/dev/stdin` cannot open (ENXIO).
 */
export async function withPrivateFile<T>(contents: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qx-private-"));
  try {
    const file = path.join(dir, "value");
    await writeFile(file, contents, { mode: 0o600, flag: "wx" });
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

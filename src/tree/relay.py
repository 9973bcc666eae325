"""Runs commands on nodes through ClusterShell's gateway tree, for sync-cluster's tree mode
(src/tree/tree-relay.ts starts it on the leader, with the python that has ClusterShell).

Input (stdin): one line of JSON, the plan

    {"topology": FILE, "root": NAME, "info": {ClusterShell task info: fanout, ssh_options, ...},
     "runs": [{"id": ID, "nodes": [NAME, ...], "command": CMD, "stdin": BYTES, "timeout": SECONDS}]}

then each run's stdin, BYTES bytes of it, in the order of "runs". Every node of a run receives the
same stdin: ClusterShell sends it once to each gateway, which hands it to each of its nodes.

Output (stdout): one JSON object a line, as things happen:

    {"route": NODE, "via": GATEWAY or null}              before anything runs
    {"run": ID, "node": NODE, "out": LINE}               a line the node printed (stdout)
    {"run": ID, "node": NODE, "err": LINE}               a line on its stderr
    {"run": ID, "node": NODE, "rc": CODE}                the node's command ended
    {"run": ID, "node": NODE, "lost": REASON}            the node will not answer (its gateway failed)
    {"run": ID, "node": NODE, "timeout": true}           the node outran the run's timeout
    {"done": true}

Lines are decoded as UTF-8 with replacement: sync-cluster's agent writes ASCII JSON only, and
what else a node prints (its login files) is shown to the user, never parsed.
"""

import json
import sys

from ClusterShell.Event import EventHandler
from ClusterShell.NodeSet import NodeSet
from ClusterShell.Propagation import PropagationTreeRouter, RouteResolvingError
from ClusterShell.Task import task_self
from ClusterShell.Topology import TopologyParser
from ClusterShell.Worker.Tree import TreeWorker

# How often gateways are looked at: a gateway whose channel died after it was set up leaves its
# nodes' commands open in ClusterShell for ever; the watchdog reports them instead.
WATCHDOG_SECONDS = 0.5


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def text(msg):
    data = bytes(msg) if not isinstance(msg, bytes) else msg
    return data.decode("utf-8", "replace")


class RunHandler(EventHandler):
    """One run's events, reported per node; a node reported as ended is never reported again."""

    def __init__(self, run_id, nodes):
        EventHandler.__init__(self)
        self.run_id = run_id
        self.open = set(nodes)

    def finish(self, node, **what):
        if node in self.open:
            self.open.discard(node)
            emit(dict(run=self.run_id, node=node, **what))

    def ev_read(self, worker, node, sname, msg):
        if node in self.open:
            key = "err" if sname == worker.SNAME_STDERR else "out"
            emit({"run": self.run_id, "node": node, key: text(msg)})

    def ev_hup(self, worker, node, rc):
        self.finish(node, rc=rc)

    def ev_close(self, worker, timedout):
        for node in worker.iter_keys_timeout() if timedout else ():
            self.finish(str(node), timeout=True)
        for node in sorted(self.open):
            self.finish(node, lost="the command ended without an exit status")


RUNS = []  # (worker, handler)


def unreachable(task):
    router = getattr(task, "router", None)
    return getattr(router, "_unreachable_hosts", NodeSet()) if router is not None else NodeSet()


def release_lost(worker, handler, gateway, reason):
    """Ends the nodes a dead gateway was serving, so the rest of the run goes on without them."""
    targets = worker.gwtargets.get(gateway)
    for node in list(targets or ()):
        handler.finish(str(node), lost=reason)
        worker._on_remote_node_close(str(node), 255, gateway)


def release_dead_gateways(task):
    """Ends the nodes of every gateway ClusterShell has marked unreachable, in every run."""
    dead = unreachable(task)
    for worker, handler in RUNS:
        for gateway in list(worker.gwtargets):
            if gateway in dead:
                release_lost(worker, handler, gateway,
                             "its gateway %s stopped answering during the command" % gateway)


class Watchdog(EventHandler):
    def ev_timer(self, timer):
        release_dead_gateways(task_self())
        if all(not handler.open for _, handler in RUNS):
            timer.invalidate()


def reroute_or_report(original):
    """ClusterShell sends the nodes of a gateway it could not reach through another gateway of the
    same route; when there is none it raises inside its event loop, which would end every run.
    Here those nodes are reported as lost, and the other gateways' runs go on."""

    def relaunch(worker, previous_gateway):
        targets = [str(node) for node in worker.gwtargets.get(previous_gateway, ())]
        try:
            original(worker, previous_gateway)
        except RouteResolvingError:
            # ClusterShell has already stopped counting them: they only need reporting.
            handler = next((h for w, h in RUNS if w is worker), None)
            for node in targets if handler is not None else ():
                handler.finish(node, lost="its gateway %s could not be reached" % previous_gateway)

    return relaunch


def main():
    inp = sys.stdin.buffer
    plan = json.loads(inp.readline())
    task = task_self()
    for key, value in plan.get("info", {}).items():
        task.set_info(key, value)
    topology = TopologyParser(plan["topology"]).tree(plan["root"])
    task.topology = topology
    router = PropagationTreeRouter(str(topology.root.nodeset), topology)
    everyone = NodeSet.fromlist([n for run in plan["runs"] for n in run["nodes"]])
    for via, nodes in router.dispatch(everyone):
        for node in nodes:
            emit({"route": str(node), "via": None if via == nodes else str(via)})
    TreeWorker._relaunch = reroute_or_report(TreeWorker._relaunch)
    for run in plan["runs"]:
        data = inp.read(run["stdin"])
        handler = RunHandler(run["id"], run["nodes"])
        worker = task.shell(run["command"], nodes=",".join(run["nodes"]), handler=handler,
                            timeout=run.get("timeout"), stderr=True, tree=True)
        worker.write(data)
        worker.set_write_eof()
        RUNS.append((worker, handler))
    task.timer(WATCHDOG_SECONDS, Watchdog(), WATCHDOG_SECONDS, autoclose=True)
    task.run()
    # The engine ends once nothing but the watchdog is left: a dead gateway's nodes may still be open.
    release_dead_gateways(task)
    for _, handler in RUNS:
        for node in sorted(handler.open):
            handler.finish(node, lost="ClusterShell ended without its exit status")
    emit({"done": True})


if __name__ == "__main__":
    main()

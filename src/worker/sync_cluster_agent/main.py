"""Starts the agent: announces it, then serves requests on stdin and stdout until the leader
closes them. The joined agent (bin/join-agent.mjs) runs this at its end."""

import os
import sys

from .framing import AGENT_VERSION, ANNOUNCE, Server
from .operations import Agent


def main():
    os.umask(0o022)
    sys.stdout.buffer.write(ANNOUNCE + b"%d\n" % AGENT_VERSION)
    sys.stdout.buffer.flush()
    reply_lines = os.environ.pop("SYNC_CLUSTER_AGENT_REPLIES", "") == "lines"
    server = Server(Agent(), sys.stdin.buffer, sys.stdout.buffer, reply_lines)
    # bench/agent-profile.ts: where a session's time goes, as cProfile statistics written at its end.
    profile_to = os.environ.get("SYNC_CLUSTER_AGENT_PROFILE")
    if profile_to:
        import cProfile
        profiler = cProfile.Profile()
        try:
            profiler.runcall(server.serve)
        finally:
            profiler.dump_stats(profile_to)
    else:
        server.serve()


if __name__ == "__main__":
    main()

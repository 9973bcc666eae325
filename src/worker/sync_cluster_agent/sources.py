"""What the agent carries as text: the selector goes into the venv's .pth, the probes run in a
fresh interpreter, the protocol's declaration is shared with the leader's TypeScript. Read from the files beside this one; the joined agent (bin/join-agent.mjs)
holds each as a string literal instead, since it runs from no file."""

import os


def source_of(name):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), encoding="utf-8") as f:
        return f.read()


SELECTOR = source_of("selector.py")
PROBE_IMPORTS = source_of("probe_imports.py")
PROBE_ORIGINS = source_of("probe_origins.py")
PROTOCOL = source_of("../../core/protocol/worker-protocol.json")

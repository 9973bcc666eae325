"""sync-cluster's worker agent: builds, verifies and publishes releases on one worker.

Started over SSH by a small bootstrap (src/transport/agent-bootstrap.ts) with the venv's python
(plain python3 when the venv is missing), which reads the agent's source from stdin and runs it,
so the node needs nothing installed but the standard library. The modules here are joined at
build time into that one source (bin/join-agent.mjs): each is written so that it reads the same
as a module and as a part of the joined file (imports of one another on single lines, no two
modules defining the same top-level name). The agent stays up for the whole session, so `watch`
pays for no process start per change.

Parts: framing (frames, errors, the Server loop), operations (Agent: one method per operation),
release_store (the project's directory), staging (a release being built), venv_doctor (the venv,
its .pth and Toil's worker entry point), import_fingerprint (what decides a new interpreter's
imports, read cheaply), verify_record (the last full verification, answered again while that
holds), start_state (what the agent read at its start: while it holds, the quick probe is answered
in-process), release_files (ids, trees, paths), durable (writes that survive a power loss),
selector and the probes (programs carried as text, sources).
"""

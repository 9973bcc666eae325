"""The operations, one method `op_NAME(req, payload)` each, as the protocol declaration lists them
(src/core/protocol/worker-protocol.json)."""

import base64
import json
import os
import sys

from .framing import AGENT_VERSION, Refused
from .release_files import MANIFEST_NAME, check_prefixes, check_space, release_id_of, safe_relative, valid_release_id
from .release_store import ReleaseStore
from .staging import Staging
from .venv_doctor import VenvDoctor

# The file contents one export reply carries at most (before base64): well under the leader's
# 64 MiB limit for a reply frame.
EXPORT_BYTES = 16 * 1024 * 1024


class Agent:
    """The operations, one method `op_NAME(req, payload)` each; `hello` sets up the parts the
    others use (the release store, the venv doctor). Framing and errors are the Server's."""

    def __init__(self):
        self.store = None
        self.doctor = None
        self.staging = None
        self.activate = True  # whether the release being staged becomes `current` once published

    def reset(self):
        """After a failed request or at the end of the session: drops a half-built release and the lock."""
        if self.staging:
            self.staging.discard()
            self.staging = None
        if self.store:
            self.store.unlock()

    def lock_for_switch(self, req):
        """The release a prepare or an activate names, once the worker is locked for it; what the
        collection after the switch must keep comes with the request. A request that follows an
        unfinished one replaces it."""
        rid = req["release"]
        if not valid_release_id(rid):
            raise Refused("bad-request", "invalid release id")
        self.store.protect = {r for r in req.get("protect", []) if valid_release_id(r)}
        self.store.collect = req.get("collect", True) is not False
        self.reset()
        self.store.lock(float(req.get("lockTimeout", 60)))
        return rid

    def after_reply(self):
        if self.store:
            self.store.collect_garbage_due()

    def switch(self, rid, publish=True):
        """Points `current` at a published release and makes sure the venv sees it."""
        self.store.switch(rid, publish)
        self.doctor.write_pth()

    def op_hello(self, req, payload):
        protocol = req.get("protocol")
        if protocol is not None and protocol != AGENT_VERSION:
            raise Refused("protocol", "this node's agent speaks protocol %d, the leader %s: the agent is sent by the "
                          "leader's sync-cluster, so its TypeScript and its agent come from different "
                          "versions; reinstall sync-cluster on the leader" % (AGENT_VERSION, json.dumps(protocol)))
        deploy = os.path.abspath(os.path.expanduser(req["deployDir"]))
        keep = max(1, int(req.get("keep", 3)))
        store = self.store
        if store is None or store.project_dir != os.path.join(deploy, req["project"]):
            self.reset()  # another project on the same session: nothing of the last one is kept
            store = ReleaseStore(deploy, req["project"], keep)
        store.check_layout()
        store.keep = keep
        self.store = store
        self.doctor = VenvDoctor(os.path.abspath(os.path.expanduser(req["venv"])), store)
        cur = store.current()
        manifest = None
        if cur and req.get("withManifest", True):
            try:
                manifest = store.manifest_of(cur)
            except (OSError, ValueError):
                manifest = None
        pth_ok = self.doctor.pth_state()[0] and self.doctor.toil_worker_ok()
        return {
            "agent": AGENT_VERSION,
            "python": {"executable": sys.executable, "version": "%d.%d.%d" % sys.version_info[:3]},
            "home": os.path.expanduser("~"),
            "projectDir": store.project_dir,
            "venv": self.doctor.venv,
            "path": os.environ.get("PATH", os.defpath),
            "sitePackages": self.doctor.site_packages(),
            "pthOk": pth_ok,
            "pinned": sorted(store.pinned()),
            "runs": store.live_runs(),
            "current": cur,
            "releases": store.releases(),
            "manifest": manifest,
            "origin": store.read_origin(),
        }

    def op_prepare(self, req, payload):
        """Locks, and either switches to a release the worker already has or stages a new one."""
        store = self.store
        rid = self.lock_for_switch(req)
        self.activate = req.get("activate", True) is not False
        store.record_origin(req.get("origin"))
        if store.has(rid):
            if not self.activate:
                self.reset()
                return {"status": "present", "release": rid}
            self.switch(rid)
            self.reset()
            return {"status": "switched", "release": rid}
        base = req.get("base")
        base_files = {}
        if base:
            if not valid_release_id(base) or not store.has(base):
                self.reset()
                return {"status": "base-missing"}
            base_files = {f[0]: f for f in store.manifest_of(base)}
        target = dict(base_files)
        for path in req.get("remove", []):
            target.pop(path, None)
        upsert = {}
        for entry in req.get("upsert", []):
            path, size, mode, sha = entry
            # Not even as a directory: `.sync-cluster-manifest.json/x` would block writing the release's manifest.
            if not safe_relative(path) or MANIFEST_NAME in path.split("/"):
                raise Refused("bad-path", "unsafe path in manifest: %r" % path)
            if not isinstance(size, int) or size < 0 or mode not in (0o644, 0o755):
                raise Refused("bad-request", "bad size or mode for %r" % path)
            target[path] = (path, size, mode, sha)
            upsert[path] = target[path]
        files = sorted(target.values())
        if release_id_of(files) != rid:
            raise Refused("bad-manifest", "the manifest does not match release %s" % rid)
        check_prefixes(target)
        check_space(store.project_dir, sum(f[1] for f in upsert.values()))
        reuse = {path: src for path, src in req.get("reuse", [])}
        # Never the base (its files are linked from) nor `current` (in use until the switch).
        self.staging = Staging(store, rid, files, recycle=store.recyclable({base, store.current()}))
        base_dir = os.path.join(store.releases_dir, base) if base else None
        self.staging.build(target, upsert, reuse, base_dir, base_files)
        return {"status": "ready", "expect": len(self.staging.expected), "linked": self.staging.linked}

    def op_upload(self, req, payload):
        """Receives the archive of the files the worker lacks, verifies them and publishes the release."""
        staging = self.staging
        if not staging:
            raise Refused("bad-request", "upload without prepare")
        if payload is None:
            raise Refused("bad-request", "upload without an archive")
        received, nbytes = staging.extract(payload)
        missing = [p for p in staging.expected if p not in received]
        if missing:
            raise Refused("incomplete", "the archive lacks %d file(s), first %r" % (len(missing), missing[0]))
        staging.publish()
        self.staging = None
        rid = staging.release
        if self.activate:
            self.switch(rid)
            # The next push diffs against this release: no need to read back what was just written.
            self.store.manifest_cache = {rid: staging.files}
        else:
            self.store.place_oldest(rid)
            self.doctor.write_pth()
        self.reset()
        return {"status": "published", "release": rid, "received": len(received), "bytes": nbytes,
                "linked": staging.linked}

    def op_activate(self, req, payload):
        """Switches `current` to a release the worker has (rollback, or a push of a known release)."""
        store = self.store
        rid = self.lock_for_switch(req)
        try:
            if not store.has(rid):
                raise Refused("no-release", "release %s is not on this worker" % rid)
            self.switch(rid, publish=False)
        finally:
            self.reset()
        return {"status": "switched", "release": rid}

    def op_runs(self, req, payload):
        """What a push to the other nodes must respect now: releases pinned here, live runs."""
        return {"pinned": sorted(self.store.pinned()), "runs": self.store.live_runs()}

    def op_export(self, req, payload):
        """A release this node has, for a node that lacks it: its manifest, or the contents of
        some of its files (base64, at most EXPORT_BYTES of them per reply)."""
        rid = req.get("release")
        if not valid_release_id(rid):
            raise Refused("bad-request", "invalid release id")
        if not self.store.has(rid):
            raise Refused("no-release", "release %s is not on this node" % rid)
        files = {f[0]: f for f in self.store.read_manifest(rid)}
        paths = req.get("paths")
        if paths is None:
            return {"release": rid, "files": sorted(files.values())}
        if not isinstance(paths, list) or (len(paths) > 1 and sum(files[p][1] for p in paths if p in files) > EXPORT_BYTES):
            raise Refused("bad-request", "export takes a list of at most %d bytes of files" % EXPORT_BYTES)
        out = []
        for path in paths:
            if path not in files:
                raise Refused("bad-path", "%r is not a file of release %s" % (path, rid))
            with open(os.path.join(self.store.releases_dir, rid, path), "rb") as f:
                out.append([path, base64.b64encode(f.read()).decode("ascii")])
        return {"release": rid, "contents": out}

    def op_abort(self, req, payload):
        self.reset()
        return {"status": "aborted"}

    def op_check(self, req, payload):
        """Facts for every check of `sync-cluster check`; the leader judges them (src/core/node-checks.ts)."""
        return self.doctor.facts(req)

    def op_verify(self, req, payload):
        return self.doctor.verify(req)

    def op_fix(self, req, payload):
        return self.doctor.fix()

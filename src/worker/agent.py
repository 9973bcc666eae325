"""sync-cluster's worker agent: builds, verifies and publishes releases on one worker.

Started over SSH by a small bootstrap (src/transport/agent-bootstrap.ts) with the venv's python
(plain python3 when the venv is missing), which reads this file's source from stdin and runs it;
it needs nothing but the standard library. It speaks a framed protocol on stdin and stdout and
stays up for the whole session, so `watch` pays for no process start per change.

It first announces itself: ANNOUNCE and AGENT_VERSION on a line of their own, so that the leader
can tell what the user's login shell printed before the agent started from the frames that follow
(src/core/agent-announcement.ts).

Frame: 4-byte big-endian length, then that many bytes of UTF-8 JSON. A request with
"payload": N is followed by N raw bytes (a tar archive). Every request gets one reply frame;
the first must be `hello`.

Parts: Server (framing, errors), Agent (the operations), ReleaseStore (the project's directory),
Staging (a release being built), VenvDoctor (the venv, its .pth and Toil's worker entry point).

Layout on the worker (docs/DESIGN.md section 5):
    DEPLOY/PROJECT/releases/ID/...        immutable once published
    DEPLOY/PROJECT/current -> releases/ID switched with rename(2)
    DEPLOY/PROJECT/.lock                  flock(2): one pusher at a time; the kernel drops it if we die
    DEPLOY/PROJECT/.staging-*             a release being built; removed by the next lock holder
    DEPLOY/PROJECT/trees/HASH/...         directories shared by releases (content-addressed, immutable);
                                          a release links to the trees it shares with others
    DEPLOY/PROJECT/.trash-*               old releases and trees renamed away, deleted in the background
    DEPLOY/PROJECT/pins/ID                touched by every interpreter that runs release ID (see SELECTOR)
    DEPLOY/PROJECT/origin.json            the leader host and root the releases come from (record_origin)
    DEPLOY/PROJECT/layout                 LAYOUT_VERSION: a directory of another layout is refused
    VENV/lib/pythonX.Y/site-packages/sync-cluster-PROJECT.pth   runs SELECTOR at every interpreter start
    VENV/bin/_toil_worker                 Toil's worker run by the venv's python (see TOIL_WORKER)
"""

import errno
import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import stat
import struct
import sys
import sysconfig
import tarfile
import time

# The protocol's version: a leader that says it speaks another one is refused at hello.
AGENT_VERSION = 3
# Written before any frame, then the version and a newline (agent-announcement.ts, AGENT_MARKER).
ANNOUNCE = b"\x00\x1esync-cluster-agent/"
# The on-disk layout's version, in DEPLOY/PROJECT/layout (ReleaseStore.check_layout).
LAYOUT_VERSION = 2
LAYOUT_NAME = "layout"
MANIFEST_NAME = ".sync-cluster-manifest.json"
COPY_CHUNK = 1 << 20
TRASH_PREFIX = ".trash-"
TREES = "trees"
PINS = "pins"
RUNS = "runs"
RELEASE_ENV = "SYNC_CLUSTER_RELEASE"
# A release an interpreter ran within this many seconds is in use by a workflow run: never collected.
PIN_SECONDS = 7 * 24 * 3600


def process_alive(pid, start):
    """Whether process `pid` runs and is the one that started at `start` (its start time in clock
    ticks since boot, from /proc; "0" where /proc was not there to say)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return start == "0" or f.read().rsplit(b")", 1)[1].split()[19].decode() == start
    except (OSError, IndexError):
        pass
    if os.path.isdir("/proc/self"):
        return False
    try:
        os.kill(pid, 0)
        return True
    except PermissionError:
        return True
    except OSError:
        return False

# Run by the venv's .pth at every interpreter start (so it must stay cheap and never raise): puts
# one release on sys.path and pins it for every process started below this one. RELEASE_ENV holds
# `PROJECT:ID` entries separated by commas (a bare ID is meant for every project). The first
# interpreter of a run (the Toil leader) finds no entry for its project: it takes `current`,
# exports its entry, and records the run (RUNS: its pid and start time, so the agent can tell
# while the run's leader lives). The batch system copies the leader's variables into every job,
# so a job on any node imports that same release even after a later push. A job whose release is
# not on its node imports nothing of the project: a finder refuses the project's top-level names
# with a message naming the release and the node, since falling back to another release would run
# other code than the run's without a word. Every interpreter but sync-cluster's own
# (SYNC_CLUSTER_NO_PIN) touches the release's pin, so that garbage collection keeps it. The roots
# go before site-packages, so an older installed copy of the workflow cannot shadow the release
# (the leader's own start directory wins the same way).
SELECTOR = r"""
def release_roots(release):
    import os
    roots_dir = os.path.join(release, ".roots")
    if not os.path.isdir(roots_dir):
        return [release]
    return [os.path.join(roots_dir, n) for n in sorted((n for n in os.listdir(roots_dir) if n.isdigit()), key=int)]


def wanted_releases(value, project):
    mine, bare = [], []
    for entry in value.split(","):
        name, sep, rid = entry.strip().rpartition(":")
        if not (8 <= len(rid) <= 64 and rid.strip("0123456789abcdef") == ""):
            continue
        if not sep:
            bare.append(rid)
        elif name == project:
            mine.append(rid)
    return mine or bare


def top_level_names(releases):
    import os
    names = set()
    for rid in os.listdir(releases):
        for root in release_roots(os.path.join(releases, rid)):
            try:
                entries = os.listdir(root)
            except OSError:
                continue
            for n in entries:
                if n.endswith(".py"):
                    n = n[:-3]
                if n and n.isidentifier() and n != "__pycache__":
                    names.add(n)
    return names


class MissingRelease(object):
    def __init__(self, project_dir, rid, names):
        self.project_dir, self.rid, self.names = project_dir, rid, names

    def message(self, name):
        import os
        project = os.path.basename(self.project_dir)
        return ("sync-cluster: this job belongs to a workflow run that uses release %s of project %s, and node %s "
                "does not have it (%s is missing), so `import %s` is refused rather than served from another "
                "release. Run `sync-cluster push` on the leader (or keep `sync-cluster watch` running): it sends "
                "every live run's release to the nodes that lack it; then run the job again. A new run uses the "
                "newest release." % (self.rid, project, os.uname()[1],
                                     os.path.join(self.project_dir, "releases", self.rid), name))

    def find_spec(self, name, path=None, target=None):
        if path is None and name in self.names:
            import sys
            text = self.message(name)
            try:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            except Exception:
                pass
            raise ImportError(text, name=name)
        return None


def record_run(project_dir, rid):
    import os
    start = "0"
    try:
        with open("/proc/self/stat", "rb") as f:
            start = f.read().rsplit(b")", 1)[1].split()[19].decode()
    except Exception:
        pass
    name = "%s@%d@%s@%s" % (rid, os.getpid(), start, os.uname()[1])
    try:
        os.close(os.open(os.path.join(project_dir, "runs", name), os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError:
        pass


def select(project_dir):
    import os, sys
    releases = os.path.join(project_dir, "releases")
    value = os.environ.get(RELEASE_ENV, "")
    asked = wanted_releases(value, os.path.basename(project_dir))
    chosen = None
    for rid in asked:
        if os.path.isdir(os.path.join(releases, rid)):
            chosen = rid
            break
    if chosen is None and asked:
        sys.meta_path.insert(0, MissingRelease(project_dir, asked[0], top_level_names(releases)))
        return
    new_run = chosen is None
    if new_run:
        rid = os.path.basename(os.readlink(os.path.join(project_dir, "current")))
        if not os.path.isdir(os.path.join(releases, rid)):
            return
        chosen = rid
        entry = "%s:%s" % (os.path.basename(project_dir), rid)
        os.environ[RELEASE_ENV] = value + "," + entry if value else entry
    roots = release_roots(os.path.join(releases, chosen))
    at = len(sys.path)
    for i, entry in enumerate(sys.path):
        if os.path.basename(entry) in ("site-packages", "dist-packages"):
            at = i
            break
    sys.path[at:at] = [r for r in roots if r not in sys.path]
    if "SYNC_CLUSTER_NO_PIN" in os.environ:
        return
    pin = os.path.join(project_dir, "pins", chosen)
    try:
        os.utime(pin)
    except OSError:
        try:
            open(pin, "a").close()
        except OSError:
            pass
    if new_run:
        record_run(project_dir, chosen)


if "PROJECT_DIR" in globals():
    try:
        select(PROJECT_DIR)
    except Exception:
        pass
""".replace("RELEASE_ENV", repr(RELEASE_ENV))

# The agent reads a release's roots with the selector's own function, so the two cannot disagree.
SELECTOR_PARTS = {"__name__": "sync_cluster_selector"}
exec(SELECTOR, SELECTOR_PARTS)

# Toil's grid batch systems start `_toil_worker` by name (or by its absolute path on the leader
# with TOIL_CHECK_ENV=True), looked up in the PATH the job gets. A venv made with
# --system-site-packages has none (Toil is not reinstalled there), so without this the job runs
# /usr/bin/_toil_worker under the system python, which never reads the venv's .pth.
TOIL_WORKER_MARK = "# Written by sync-cluster"
TOIL_WORKER = """#!%s
%s: Toil's worker entry point, run by this virtualenv's python so that jobs started by a
# batch system see the venv's packages and the release the venv's .pth selects. Toil itself stays
# the system's (--system-site-packages); this file holds no copy of it.
import sys

from toil.worker import main

if __name__ == "__main__":
    sys.exit(main())
"""


REMOVERS = []  # pids of background removers, reaped at the next collection


def remove_in_background(paths):
    """Deletes renamed-away releases at the lowest CPU priority, after the reply and outside the
    lock, so neither the next push nor the node's jobs wait for thousands of unlinks. Whatever a
    killed remover leaves is picked up by the next collection.

    posix_spawn (vfork underneath) costs a fraction of forking this process; the remover gets
    /dev/null instead of the SSH channel (sshd would wait for it) and, like every descriptor
    Python opens, the lock's descriptor is not inherited."""
    for pid in list(REMOVERS):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                REMOVERS.remove(pid)
        except ChildProcessError:
            REMOVERS.remove(pid)
    try:
        null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
        REMOVERS.append(os.posix_spawnp("nice", ["nice", "-n", "19", "rm", "-rf", "--"] + paths, os.environ,
                                        file_actions=null, setsid=True))
    except (OSError, AttributeError, TypeError):  # no nice/rm on PATH, or a Python before 3.8
        for p in paths:
            shutil.rmtree(p, ignore_errors=True)


# A node that loses power in the middle of a push must come back with the old release or the new
# one whole: never `current`, nor a shared tree that later releases link to, holding files the disk
# had not yet received (ext4 and XFS write a new file's data seconds after its name). So what a
# push wrote is made durable before anything points at it, and each rename that publishes it
# before the next step. Up to DURABLE_EACH_MAX files and directories are fsynced one by one (a save
# in watch writes a few); more are flushed by one syncfs(2) of the deploy directory's file system,
# which costs one journal commit instead of one per file but also writes out other processes' data.
DURABLE_EACH_MAX = 64


def fsync_path(path):
    """fsync(2) of a file or a directory, named in the error."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path)


def sync_file_system(path):
    """syncfs(2) of the file system holding `path`; sync(2) where the C library lacks syncfs."""
    try:
        import ctypes
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (ImportError, OSError, AttributeError):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            if err != errno.ENOSYS:
                raise OSError(err, os.strerror(err), path)
            os.sync()  # a kernel older than syncfs (2.6.39)
    finally:
        os.close(fd)


def make_durable(paths, file_system, whole):
    """Makes the contents of `paths` (files, and directories for their entries) durable: one
    fsync each or, when `whole`, one syncfs of `file_system`."""
    if whole:
        sync_file_system(file_system)
        return
    for path in paths:
        fsync_path(path)


def replace_file(path, text, mode=0o644, errors="strict"):
    """Writes a small file whole or not at all, durably: a temporary name, fsync, rename, fsync of
    the directory."""
    tmp = path + ".tmp-%d" % os.getpid()
    try:
        with open(tmp, "w", encoding="utf-8", errors=errors) as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)  # a full disk leaves no half-written temporary file behind
        except OSError:
            pass
        raise
    fsync_path(os.path.dirname(path) or ".")


class Refused(Exception):
    """A request the agent will not carry out; the message is for the user."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Lost(Exception):
    """A frame after which the stream cannot be followed (a length or payload size not to be believed)."""


def release_id_of(files):
    """Same algorithm as releaseIdOf in src/core/manifest.ts: the id proves the content."""
    h = hashlib.sha256()
    for path, size, mode, sha in sorted(files, key=lambda f: f[0].encode("utf-8", "surrogatepass")):
        h.update(("%s\0%d\0%o\0%s\n" % (path, size, mode, sha)).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:24]


def tree_hashes(files):
    """Content hash of every directory of a release but its root, like git's trees: a directory's
    hash covers its files (name, mode, size, sha256) and its subdirectories' hashes, so two
    releases share a directory exactly when everything below it is the same."""
    entries = {}
    dirs = set()
    for path, size, mode, sha in files:
        parent, _, name = path.rpartition("/")
        entries.setdefault(parent, []).append("f\0%s\0%o\0%d\0%s" % (name, mode, size, sha))
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    hashes = {}
    for d in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        parent, _, name = d.rpartition("/")
        text = "\n".join(sorted(entries.get(d, ())))
        hashes[d] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        entries.setdefault(parent, []).append("d\0%s\0%s" % (name, hashes[d]))
    return hashes


def tree_link(d, h):
    """The link that stands for directory `d` (tree `h`): from its parent's tree, a sibling in
    trees/; from a release's root (releases/ID/), up two levels."""
    if "/" in d:
        return "../" + h
    return "../../%s/%s" % (TREES, h)


def valid_release_id(rid):
    return isinstance(rid, str) and 8 <= len(rid) <= 64 and all(c in "0123456789abcdef" for c in rid)


def safe_relative(path):
    """A manifest path must stay inside the release: relative, no `..`, no empty or hidden-escape parts."""
    if not isinstance(path, str) or not path or "\0" in path or path.startswith("/"):
        return False
    parts = path.split("/")
    return all(p not in ("", ".", "..") for p in parts)


class ReleaseStore:
    """One project's directory on the worker: its releases, `current`, the lock, shared trees,
    pins, origin and garbage collection. Knows nothing of the venv or of the wire."""

    def __init__(self, deploy_dir, project, keep):
        if not project or "/" in project or project in (".", "..") or project.startswith("."):
            raise Refused("bad-request", "invalid project name %r" % project)
        self.deploy_dir = deploy_dir
        self.project = project
        self.project_dir = os.path.join(deploy_dir, project)
        self.releases_dir = os.path.join(self.project_dir, "releases")
        self.keep = keep
        self.lock_fd = None
        self.gc_due = None
        self.manifest_cache = {}
        self.protect = set()  # releases pinned on the leader by runs in progress (sent with each push)
        self.collect = True  # False when the leader's pins are not known: nothing is collected
        self.tree_sets = {}  # release id -> the tree hashes it uses, for garbage collection

    # ---- the layout's version ---------------------------------------------------------------
    def layout_path(self):
        return os.path.join(self.project_dir, LAYOUT_NAME)

    def check_layout(self, create=False):
        """Refuses a project directory laid out by another version of the agent. A directory
        without the file was made by an earlier agent whose layout is this one: it gets the file,
        as does a new directory (create). Nothing is written where nothing exists yet unless asked,
        so `check` and `status` leave an unused deploy directory untouched."""
        path = self.layout_path()
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                found = f.read().strip()
        except FileNotFoundError:
            found = None
        except OSError:
            return  # unreadable: the lock and the writes that follow report what is wrong
        if found is not None:
            if found != str(LAYOUT_VERSION):
                raise Refused("layout", "%s is laid out for layout %s (its file %s), this agent uses layout %d: "
                              "push with the sync-cluster version that made it, or move the directory away "
                              "(or choose another deploy directory) and push again"
                              % (self.project_dir, found[:40] or "(empty)", path, LAYOUT_VERSION))
            return
        if not create and not os.path.isdir(self.project_dir):
            return
        try:
            os.makedirs(self.project_dir, exist_ok=True)
            replace_file(path, "%d\n" % LAYOUT_VERSION)
        except OSError:
            if create:
                raise
            # hello on a directory it may not write (check, status): the next push writes it

    # ---- releases ----------------------------------------------------------------------------
    def has(self, rid):
        return os.path.isfile(os.path.join(self.releases_dir, rid, MANIFEST_NAME))

    def pinned(self, now=None):
        """Ids of the releases an interpreter ran within PIN_SECONDS (workflow runs in progress)."""
        now = time.time() if now is None else now
        out = set()
        try:
            names = os.listdir(os.path.join(self.project_dir, PINS))
        except OSError:
            return out
        for name in names:
            try:
                if valid_release_id(name) and now - os.stat(os.path.join(self.project_dir, PINS, name)).st_mtime < PIN_SECONDS:
                    out.add(name)
            except OSError:
                pass
        return out

    def run_records(self):
        """(file name, release, pid, start, host) of each record a run's first interpreter left (SELECTOR)."""
        runs_dir = os.path.join(self.project_dir, RUNS)
        try:
            names = os.listdir(runs_dir)
        except OSError:
            return
        for name in names:
            parts = name.split("@", 3)
            if len(parts) == 4 and valid_release_id(parts[0]) and parts[1].isdigit():
                yield name, parts[0], int(parts[1]), parts[2], parts[3]

    def live_runs(self):
        """The workflow runs whose first interpreter (the Toil leader) still runs on this host,
        oldest first: each as its release, since when and the leader's pid."""
        host = os.uname()[1]
        out = []
        for name, rid, pid, start, on in self.run_records():
            if on != host or not process_alive(pid, start):
                continue
            try:
                since = os.stat(os.path.join(self.project_dir, RUNS, name)).st_mtime
            except OSError:
                continue
            out.append({"release": rid, "since": since, "pid": pid})
        out.sort(key=lambda r: r["since"])
        return out

    def collect_runs(self):
        """Records of runs whose leader has exited on this host, and of other hosts' runs (a
        shared deploy directory) once they are as old as a pin may be."""
        host = os.uname()[1]
        now = time.time()
        for name, rid, pid, start, on in self.run_records():
            path = os.path.join(self.project_dir, RUNS, name)
            try:
                if on == host:
                    if process_alive(pid, start):
                        continue
                elif now - os.stat(path).st_mtime < PIN_SECONDS:
                    continue
                os.unlink(path)
            except OSError:
                pass

    def place_oldest(self, rid):
        """Gives a release published beside `current` (a live run's, installed on a node that
        lacked it) the oldest publish time: it is neither the next rollback nor counted as new."""
        times = [r["time"] for r in self.releases() if r["id"] != rid]
        oldest = min(times) - 1 if times else time.time()
        os.utime(os.path.join(self.releases_dir, rid), (oldest, oldest))

    def current(self):
        try:
            target = os.readlink(os.path.join(self.project_dir, "current"))
        except OSError:
            return None
        rid = os.path.basename(target.rstrip("/"))
        return rid if valid_release_id(rid) else None

    def releases(self):
        out = []
        try:
            names = os.listdir(self.releases_dir)
        except OSError:
            return out
        for name in names:
            if not valid_release_id(name):
                continue
            path = os.path.join(self.releases_dir, name)
            if not os.path.isfile(os.path.join(path, MANIFEST_NAME)):
                continue
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            out.append({"id": name, "time": mtime})
        out.sort(key=lambda r: r["time"], reverse=True)
        return out

    def roots(self, rid):
        """The directories a release puts on sys.path (SELECTOR's own release_roots)."""
        return SELECTOR_PARTS["release_roots"](os.path.join(self.releases_dir, rid))

    def read_manifest(self, rid):
        with open(os.path.join(self.releases_dir, rid, MANIFEST_NAME), encoding="utf-8", errors="surrogatepass") as f:
            return [tuple(x) for x in json.load(f)["files"]]

    def manifest_of(self, rid):
        if rid in self.manifest_cache:
            return self.manifest_cache[rid]
        files = self.read_manifest(rid)
        self.manifest_cache = {rid: files}  # one release is enough to diff against; keeps memory flat
        return files

    # ---- the project's origin ----------------------------------------------------------------
    def origin_path(self):
        return os.path.join(self.project_dir, "origin.json")

    def read_origin(self):
        """Where this project's releases come from (leader host and root), as the last push recorded it."""
        try:
            with open(self.origin_path(), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def record_origin(self, origin):
        """Called under the lock by a push the leader decided may claim the project name."""
        if not isinstance(origin, dict) or origin == self.read_origin():
            return
        replace_file(self.origin_path(), json.dumps(origin))

    # ---- locking -----------------------------------------------------------------------------
    def lock(self, timeout):
        # Before anything is created or cleaned up: a directory of another layout stays as it is.
        self.check_layout(create=True)
        os.makedirs(self.releases_dir, exist_ok=True)
        fd = os.open(os.path.join(self.project_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise Refused("locked", "another push to this worker has held its lock for %ds" % timeout)
                time.sleep(0.05)
        self.lock_fd = fd
        self.remove_leftovers()

    def unlock(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def remove_leftovers(self):
        """Staging directories of interrupted pushes: safe to remove, we hold the lock."""
        for name in os.listdir(self.project_dir):
            if name.startswith(".staging-") or name.startswith(".current-"):
                path = os.path.join(self.project_dir, name)
                if os.path.islink(path) or os.path.isfile(path):
                    os.unlink(path)
                else:
                    shutil.rmtree(path, ignore_errors=True)

    # ---- switching and garbage collection ----------------------------------------------------
    def switch(self, rid, publish=True):
        """Points `current` at a published release atomically.

        A push (publish) makes the release the newest one; a rollback keeps its publish time, so
        that the next rollback goes further back instead of returning to the release just left.
        """
        tmp = os.path.join(self.project_dir, ".current-%d" % os.getpid())
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.join("releases", rid), tmp)
        os.replace(tmp, os.path.join(self.project_dir, "current"))
        fsync_path(self.project_dir)  # the switch itself, before the leader is told it is done
        if publish:
            now = time.time()
            os.utime(os.path.join(self.releases_dir, rid), (now, now))
        # Old releases are removed after the reply, so the switch is not kept waiting for it.
        self.gc_due = rid

    def collect_garbage_due(self):
        """Runs the garbage collection a switch asked for, under the lock, if no pusher holds it."""
        if self.gc_due is None or self.lock_fd is not None:
            return
        if not self.collect:
            self.gc_due = None
            return
        current, self.gc_due = self.gc_due, None
        try:
            self.lock(0)
        except (Refused, OSError):
            return  # another pusher holds the lock; its own switch collects
        try:
            self.collect_garbage(self.current() or current)
        finally:
            self.unlock()

    def due_for_collection(self, current):
        """Ids of the releases a collection with `current` current removes, newest first: all but
        the newest `keep`, `current` and those a workflow run uses (pinned here, or on the leader:
        `protect`)."""
        if not self.collect:
            return
        in_use = self.pinned() | self.protect | {r["release"] for r in self.live_runs()}
        kept = 0
        for r in self.releases():
            if r["id"] == current or r["id"] in in_use:
                continue
            kept += 1
            if kept >= self.keep:
                yield r["id"]

    def recyclable(self, keep_also):
        """The release the collection after the next publish would remove (the new release is then
        current, not yet among the releases: the current one counts as an ordinary kept one), other
        than those in `keep_also`: its directory can become the new release's staging directory
        instead of being deleted, or None."""
        return next((rid for rid in self.due_for_collection(None) if rid not in keep_also), None)

    def take_for_staging(self, rid, staging_path):
        """Moves a release that is due for collection out of releases/ to become a staging
        directory; False when it cannot be moved (then it is collected as usual)."""
        if rid is None:
            return False
        try:
            os.rename(os.path.join(self.releases_dir, rid), staging_path)
        except OSError:
            return False
        self.tree_sets.pop(rid, None)
        self.manifest_cache.pop(rid, None)
        st = os.lstat(staging_path)
        if not stat.S_ISDIR(st.st_mode):
            # A link (or anything but a directory) put in releases/ on the worker: what it points
            # at is no release of ours to empty. The link goes, as the collection would remove it.
            os.unlink(staging_path)
            return False
        if stat.S_IMODE(st.st_mode) != 0o755:
            os.chmod(staging_path, 0o755)
        return True

    def collect_garbage(self, current):
        """Keeps the newest `keep` releases and, always, the current one and those a workflow run
        uses (pinned here, or on the leader: `protect`); pins of removed releases go too."""
        for rid in self.due_for_collection(current):
            # Renamed out of releases/ first, so an interrupted removal never leaves a
            # half-deleted release that a later push could link from.
            # Unique even when the same release is collected again while its last copy is deleted.
            doomed = os.path.join(self.project_dir, "%s%s-%s" % (TRASH_PREFIX, rid, os.urandom(6).hex()))
            try:
                os.rename(os.path.join(self.releases_dir, rid), doomed)
            except OSError:
                continue
        self.collect_trees()
        self.collect_pins()
        self.collect_runs()
        trash = [os.path.join(self.project_dir, n) for n in os.listdir(self.project_dir) if n.startswith(TRASH_PREFIX)]
        if trash:
            remove_in_background(trash)

    def collect_pins(self):
        """Pins of releases that are gone, once they are old (a pin may be written just before
        its release is published on a slow node)."""
        pins_dir = os.path.join(self.project_dir, PINS)
        try:
            names = os.listdir(pins_dir)
        except OSError:
            return
        live = self.pinned()
        for name in names:
            if name not in live and not os.path.isdir(os.path.join(self.releases_dir, name)):
                try:
                    os.unlink(os.path.join(pins_dir, name))
                except OSError:
                    pass

    def collect_trees(self):
        """Moves away the trees no kept release uses; when a release's manifest cannot be read,
        every tree stays (a tree too many costs space, one too few breaks a release)."""
        trees_dir = os.path.join(self.project_dir, TREES)
        try:
            names = os.listdir(trees_dir)
        except OSError:
            return
        used = set()
        kept = [r["id"] for r in self.releases()]
        for rid in kept:
            if rid not in self.tree_sets:
                try:
                    self.tree_sets[rid] = set(tree_hashes(self.read_manifest(rid)).values())
                except (OSError, ValueError, KeyError, TypeError):
                    return
            used |= self.tree_sets[rid]
        self.tree_sets = {rid: self.tree_sets[rid] for rid in kept}
        for name in names:
            if name not in used:
                try:
                    os.rename(os.path.join(trees_dir, name),
                              os.path.join(self.project_dir, "%stree-%s-%s" % (TRASH_PREFIX, name, os.urandom(6).hex())))
                except OSError:
                    pass


class Staging:
    """A release being built under the store's lock, in DEPLOY/PROJECT/.staging-ID-PID: what the
    leader will send (expected), what was linked from the base release, the release's trees and
    which of them are built here (the others are links to trees the worker has), and the files
    the leader sends that land in a shared tree (checked, then dropped)."""

    def __init__(self, store, release, files, recycle=None):
        self.store = store
        self.release = release
        self.files = files
        self.expected = {}
        self.linked = 0
        self.trees = {}
        self.built = []
        self.discard_paths = set()
        self.path = os.path.join(store.project_dir, ".staging-%s-%d" % (release, os.getpid()))
        self.dirs_made = set()
        self.written = []  # files created here, made durable before the release is published
        # Under the agent's umask (022) a file is created with its manifest mode (0644 or 0755) and
        # needs no chmod; any other umask gets one fchmod per file.
        umask = os.umask(0o022)
        os.umask(umask)
        self.exact_modes = umask & 0o755 == 0
        # A release due for collection is reused rather than deleted while a new one is made:
        # its links to the trees both share are kept (see build), which on a file system where
        # every creation and removal is slow (NFS, this machine's disk) is most of a small push.
        self.recycled = store.take_for_staging(recycle, self.path)
        self.kept_links = set()
        if not self.recycled:
            os.mkdir(self.path, 0o755)

    def discard(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def build(self, target, upsert, reuse, base_dir, base_files):
        """Links the trees the worker already has and the unchanged files of the base release;
        what is left is expected in the upload."""
        # Directories whose tree the worker already has become links to it: a change to one file
        # builds only the directories on its path, not the whole release.
        trees = tree_hashes(self.files)
        trees_dir = os.path.join(self.store.project_dir, TREES)
        os.makedirs(trees_dir, exist_ok=True)
        have = set(os.listdir(trees_dir))
        if self.recycled:
            self.clear_recycled({d: tree_link(d, h) for d, h in trees.items() if "/" not in d and h in have})
        shared = set()
        for d in sorted(trees, key=lambda d: d.count("/")):
            parent = d.rpartition("/")[0]
            if parent in shared:
                shared.add(d)
            elif trees[d] in have:
                shared.add(d)
                if parent:
                    self.ensure_dir(os.path.join(self.path, parent))
                if d not in self.kept_links:
                    os.symlink(tree_link(d, trees[d]), os.path.join(self.path, d))
        self.trees = trees
        self.built = [d for d in trees if d not in shared]
        for path, f in target.items():
            if path.rpartition("/")[0] in shared:
                if path in upsert and path not in reuse:
                    self.discard_paths.add(path)  # sent by the leader, already here: checked, then dropped
                continue
            if path in upsert and path not in reuse:
                continue
            src = reuse.get(path, path)
            if not base_dir or src not in base_files or base_files[src][1:] != f[1:]:
                raise Refused("bad-request", "cannot reuse %r from the base release" % path)
            self.place_from(os.path.join(base_dir, src), path, f)
            self.linked += 1
        self.expected = {p: f for p, f in upsert.items() if p not in reuse}

    def clear_recycled(self, links):
        """Empties a recycled release's directory but for its links that this release has too
        (`links`: top-level name -> link text); nothing in it is followed, only read or removed."""
        with os.scandir(self.path) as entries:
            for entry in entries:
                try:
                    if entry.is_symlink() and links.get(entry.name) == os.readlink(entry.path):
                        self.kept_links.add(entry.name)
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                except OSError as e:
                    raise Refused("error", "cannot reuse the old release's directory: %s" % e)

    def ensure_dir(self, parent):
        """Creates a directory below staging once per release, checking the chain for links once."""
        if parent in self.dirs_made:
            return
        os.makedirs(parent, mode=0o755, exist_ok=True)
        # Everything below staging was created by us as plain directories; check it all the same.
        probe = parent
        while probe != self.path and probe not in self.dirs_made:
            if os.path.islink(probe):
                raise Refused("bad-path", "link in path %r" % os.path.relpath(parent, self.path))
            self.dirs_made.add(probe)
            probe = os.path.dirname(probe)

    def create(self, path, mode):
        """Creates a file inside the staging directory, never following a link anywhere, with its
        final mode; returns the descriptor. The staging directory is the unit that is switched
        atomically, so files are written in place: no temporary name and rename per file."""
        full = os.path.join(self.path, path)
        self.ensure_dir(os.path.dirname(full))
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        self.written.append(full)
        if not self.exact_modes:
            os.fchmod(fd, mode)
        return fd

    def open_new(self, path, mode):
        return os.fdopen(self.create(path, mode), "wb")

    def place_from(self, src, path, f):
        """Links an unchanged file from the base release (copies across file systems)."""
        full = os.path.join(self.path, path)
        self.ensure_dir(os.path.dirname(full))
        try:
            os.link(src, full, follow_symlinks=False)
        except OSError:
            st = os.lstat(src)
            if not stat.S_ISREG(st.st_mode):
                raise Refused("corrupt-base", "the base release's copy of %r was changed on the worker" % path)
            with open(src, "rb") as r, self.open_new(path, f[2]) as w:
                shutil.copyfileobj(r, w, COPY_CHUNK)
        # The link is the base's own inode: one lstat checks what the base holds.
        st = os.lstat(full)
        if not stat.S_ISREG(st.st_mode) or st.st_size != f[1]:
            raise Refused("corrupt-base", "the base release's copy of %r was changed on the worker" % path)
        if stat.S_IMODE(st.st_mode) != f[2]:
            os.chmod(full, f[2])

    def extract(self, reader):
        """Writes the archive's files into staging, each checked against the manifest; returns
        (names received, bytes)."""
        expected = self.expected
        discard = self.discard_paths
        received = set()
        nbytes = 0
        try:
            archive = tarfile.open(fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape")
        except tarfile.TarError as e:
            raise Refused("bad-archive", "not a valid archive: %s" % e)
        with archive:
            try:
                for member in archive:
                    name = member.name
                    if not member.isreg():
                        raise Refused("bad-archive", "archive entry %r is not a regular file" % name)
                    if not safe_relative(name):
                        raise Refused("bad-archive", "archive entry %r escapes the release" % name)
                    f = expected.get(name)
                    if f is None or name in received:
                        raise Refused("bad-archive", "unexpected archive entry %r" % name)
                    if member.size != f[1]:
                        raise Refused("bad-archive", "size of %r differs from the manifest" % name)
                    src = archive.extractfile(member)
                    h = hashlib.sha256()
                    fd = None if name in discard else self.create(name, f[2])
                    try:
                        # Hashed while written, read once; a file is one read and one write (a
                        # small one) with no buffered file object around the descriptor.
                        left = f[1]
                        while left:
                            chunk = src.read(min(left, COPY_CHUNK))
                            if not chunk:
                                raise Refused("bad-archive", "archive entry %r is cut short" % name)
                            left -= len(chunk)
                            h.update(chunk)
                            if fd is not None:
                                view = memoryview(chunk)
                                while view:
                                    view = view[os.write(fd, view):]
                    finally:
                        if fd is not None:
                            os.close(fd)
                    if h.hexdigest() != f[3]:
                        raise Refused("corrupt", "content of %r does not match its checksum" % name)
                    received.add(name)
                    nbytes += f[1]
            except tarfile.TarError as e:
                raise Refused("bad-archive", "broken archive: %s" % e)
            except OSError as e:
                if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
                    raise Refused("no-space", "the worker's disk is full (%s)" % self.store.project_dir)
                raise
        return received, nbytes

    def publish(self):
        """Writes the manifest, moves the built trees into trees/ and renames staging into
        releases/; each step durable before the next makes it visible (see make_durable)."""
        with self.open_new(MANIFEST_NAME, 0o644) as w:
            w.write(json.dumps({"release": self.release, "files": self.files}).encode("utf-8", "surrogatepass"))
        store = self.store
        staged = self.written + sorted(self.dirs_made) + [self.path]
        whole = len(staged) > DURABLE_EACH_MAX
        make_durable(staged, store.project_dir, whole)
        self.publish_trees()
        store.tree_sets[self.release] = set(self.trees.values())
        release_dir = os.path.join(store.releases_dir, self.release)
        os.rename(self.path, release_dir)
        # The directories those renames changed: trees/, releases/, and each tree's parent, which
        # holds the link left in its place (a built directory's parent is built too, or the root);
        # and the project directory, which the staging directory left (and which gained trees/
        # and releases/ at the first push).
        trees_dir = os.path.join(store.project_dir, TREES)
        changed = {trees_dir, release_dir, store.releases_dir, store.project_dir}
        for d in self.built:
            parent = d.rpartition("/")[0]
            changed.add(os.path.join(trees_dir, self.trees[parent]) if parent else release_dir)
        make_durable(sorted(changed), store.project_dir, whole)

    def publish_trees(self):
        """Moves each directory built for this release into trees/, deepest first, leaving a link in
        its place; a tree is complete when it arrives there, so any release may share it."""
        trees_dir = os.path.join(self.store.project_dir, TREES)
        for d in sorted(self.built, key=lambda d: d.count("/"), reverse=True):
            here = os.path.join(self.path, d)
            try:
                os.rename(here, os.path.join(trees_dir, self.trees[d]))
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                shutil.rmtree(here)  # the same directory twice in one release: one copy is enough
            os.symlink(tree_link(d, self.trees[d]), here)


def import_state():
    """What a new interpreter reads at start to build sys.path and its import hooks, cheaply: the
    venv's pyvenv.cfg and python, and each site directory's .pth files and entries (a directory's
    mtime moves with every package installed or removed there)."""
    state = []
    for path in [os.path.join(sys.prefix, "pyvenv.cfg"), sys.executable]:
        try:
            st = os.stat(path)
            state.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            state.append((path, None))
    for entry in sys.path:
        if os.path.basename(entry) not in ("site-packages", "dist-packages"):
            continue
        try:
            state.append((entry, os.stat(entry).st_mtime_ns))
            for name in sorted(os.listdir(entry)):
                if name.endswith(".pth"):
                    st = os.stat(os.path.join(entry, name))
                    state.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            state.append((entry, None))
    return state


# As this interpreter found it at start: while it holds, an answer given in-process is the one a
# fresh interpreter would give.
STARTED_WITH = import_state()


class VenvDoctor:
    """The node's virtualenv as the release needs it: pyvenv.cfg, the release-selecting .pth,
    Toil's `_toil_worker`; the facts `check` judges, what `check --fix` repairs, and where the
    venv's python loads the workflow from (verify)."""

    def __init__(self, venv, store):
        self.venv = venv
        self.store = store

    # ---- the .pth and Toil's worker entry point -----------------------------------------------
    def site_packages(self):
        """The venv's site-packages, if this agent runs under the venv's python."""
        if sys.prefix == getattr(sys, "base_prefix", sys.prefix):
            return None
        if os.path.realpath(sys.prefix) != os.path.realpath(self.venv):
            return None
        return sysconfig.get_paths()["purelib"]

    def pth_path(self):
        site = self.site_packages()
        return os.path.join(site, "sync-cluster-%s.pth" % self.store.project) if site else None

    def pth_content(self):
        """A comment naming the project directory (so `check` can tell whose it is), then the
        import line that runs SELECTOR; ascii() keeps any file name on one line."""
        project_dir = self.store.project_dir
        return "# sync-cluster project %s\nimport sys; exec(%s, {'PROJECT_DIR': %s})\n" % (
            ascii(project_dir), ascii(SELECTOR), ascii(project_dir))

    def pth_state(self):
        """(content is exactly ours, the project directory the existing .pth serves or None)."""
        path = self.pth_path()
        if not path:
            return False, None
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                content = f.read()
        except OSError:
            return False, None
        first = content.split("\n", 1)[0]
        serves = None
        if first.startswith("# sync-cluster project "):
            import ast
            try:
                serves = ast.literal_eval(first[len("# sync-cluster project "):])
            except (ValueError, SyntaxError):
                serves = None
        elif first.strip().endswith("/current"):  # the plain line of agents before version 2
            serves = os.path.dirname(first.strip())
        return content == self.pth_content(), serves

    def toil_worker_path(self):
        return os.path.join(self.venv, "bin", "_toil_worker")

    def toil_worker_ok(self):
        """The venv's `_toil_worker` is ours, or somebody else's (Toil reinstalled in the venv:
        `check` reports that), or Toil is not importable at all, so there is nothing to run."""
        try:
            with open(self.toil_worker_path(), encoding="utf-8", errors="replace") as f:
                f.readline()
                return True
        except OSError:
            return importlib.util.find_spec("toil") is None

    def ensure_toil_worker(self):
        path = self.toil_worker_path()
        if os.path.lexists(path) or importlib.util.find_spec("toil") is None:
            return None
        replace_file(path, TOIL_WORKER % (os.path.join(self.venv, "bin", "python"), TOIL_WORKER_MARK), 0o755)
        return path

    def write_pth(self):
        """Makes the venv run the selector, and gives it Toil's worker entry point."""
        path = self.pth_path()
        if not path:
            return False
        os.makedirs(os.path.join(self.store.project_dir, PINS), exist_ok=True)
        os.makedirs(os.path.join(self.store.project_dir, RUNS), exist_ok=True)
        self.ensure_toil_worker()
        if self.pth_state()[0]:
            return True
        replace_file(path, self.pth_content(), errors="surrogateescape")
        return True

    # ---- readiness checks (sync-cluster check) ---------------------------------------------
    def pyvenv_cfg(self):
        """(path, line number, value) of include-system-site-packages, or None when absent."""
        path = os.path.join(self.venv, "pyvenv.cfg")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return path, None, None
        for i, line in enumerate(lines, 1):
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "include-system-site-packages":
                return path, i, value.strip().lower()
        return path, 0, None

    def venv_python(self):
        path = os.path.join(self.venv, "bin", "python")
        return path if os.access(path, os.X_OK) else None

    def probe_imports(self, python, modules, deep):
        """Asks the venv's python, in a fresh process, where toil and the workflow's imports come from."""
        import subprocess

        args = {"modules": modules, "deep": deep}
        if (not deep and os.path.realpath(sys.executable) == os.path.realpath(python) and self.site_packages()
                and import_state() == STARTED_WITH):
            # The quick form only looks modules up, and this agent already runs the venv's python
            # and nothing it read at start has changed since: answer in-process (as from "/", like the subprocess) instead of starting another python.
            saved = list(sys.path)
            try:
                sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
                importlib.invalidate_caches()  # a long-lived agent must see packages installed since
                namespace = {"__name__": "sync_cluster_probe"}
                exec(PROBE_IMPORTS, namespace)
                return namespace["probe"](args)
            except Exception as e:
                return {"error": "%s: %s" % (type(e).__name__, e)}
            finally:
                sys.path[:] = saved
        code = PROBE_IMPORTS
        try:
            out = subprocess.run([python, "-c", code, json.dumps(args)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"error": str(e)}
        if out.returncode != 0:
            lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
            return {"error": lines[-1] if lines else "the venv's python failed"}
        try:
            return json.loads(out.stdout.decode("utf-8", "replace"))
        except ValueError:
            return {"error": "unreadable answer"}

    def facts(self, req):
        """Facts for every check of `sync-cluster check`; the leader judges them (src/core/node-checks.ts)."""
        python = self.venv_python()
        cfg_path, cfg_line, cfg_value = self.pyvenv_cfg()
        facts = {
            "venvPython": python,
            "venvIsVenv": os.path.isfile(cfg_path),
            "pyvenvCfg": {"path": cfg_path, "line": cfg_line, "value": cfg_value},
        }
        if python:
            facts["imports"] = self.probe_imports(python, req.get("modules", []), bool(req.get("deep")))
        # The deploy directory, or its nearest existing parent, must be writable.
        probe = self.store.project_dir
        while not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        facts["deploy"] = {"path": self.store.project_dir, "existing": probe, "writable": os.access(probe, os.W_OK | os.X_OK)}
        try:
            st = os.statvfs(probe)
            facts["deploy"]["free"] = st.f_bavail * st.f_frsize
        except OSError:
            facts["deploy"]["free"] = None
        facts["pth"] = {"path": self.pth_path(), "expected": self.store.project_dir, "serves": self.pth_state()[1]}
        facts["current"] = self.store.current()
        facts["releases"] = self.store.releases()
        facts["venv"] = self.venv
        facts["projectDir"] = self.store.project_dir
        names = [n for n in req.get("topLevel", []) if isinstance(n, str)]
        if python and names:
            facts["entry"] = self.probe_origins(python, names, os.environ.get("PATH", os.defpath))
        job = req.get("toilWorker")
        if job:
            facts["toilWorker"] = self.probe_toil_worker(job.get("command", "_toil_worker"), job.get("path", ""), names)
        return facts

    def probe_origins(self, python, names, path, release=None):
        """Where a fresh `python` started from "/" finds each top-level name: inside the project
        directory, or shadowed by another copy. Outside any run (`current`), or as a job of a run
        on `release`."""
        import subprocess

        env = {k: v for k, v in os.environ.items() if k != RELEASE_ENV and not k.startswith("PYTHON")}
        env["PATH"] = path
        env["SYNC_CLUSTER_NO_PIN"] = "1"
        if release:
            env[RELEASE_ENV] = "%s:%s" % (self.store.project, release)
        try:
            out = subprocess.run([python, "-c", PROBE_ORIGINS, json.dumps(names)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd="/", env=env, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"error": str(e)}
        if out.returncode != 0:
            lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
            return {"error": lines[-1] if lines else "%s failed" % python}
        try:
            return json.loads(out.stdout.decode("utf-8", "replace"))
        except ValueError:
            return {"error": "unreadable answer from %s" % python}

    def verify(self, req):
        """Where a job's interpreter loads each top-level name from, asked after every publish of a
        fresh venv python started as a batch system starts a job: from "/", with RELEASE_ENV naming
        the release (`current`, or the one given), nothing of this agent's own sys.path. A long-lived
        agent (held by the daemon or by watch) read the venv's .pth files when it started: an import
        hook or path hack added since would be missed in-process."""
        names = [n for n in req.get("topLevel", []) if isinstance(n, str)]
        current = self.store.current()
        release = req.get("release") if valid_release_id(req.get("release")) else current
        python = self.venv_python()
        if not python:
            return {"error": "%s/bin/python is missing" % self.venv, "projectDir": self.store.project_dir,
                    "current": release}
        answer = self.probe_origins(python, names, os.environ.get("PATH", os.defpath), release)
        answer["projectDir"] = self.store.project_dir
        answer["current"] = release
        return answer

    def probe_toil_worker(self, command, path, names):
        """Finds Toil's worker command the way a batch system's job will (the leader's PATH, or
        the absolute path Toil submits with TOIL_CHECK_ENV), the interpreter its first line names,
        and where that interpreter finds the workflow."""
        found = None
        if "/" in command:
            found = command if os.access(command, os.X_OK) and os.path.isfile(command) else None
        else:
            for d in path.split(":"):
                candidate = os.path.join(d or ".", command)
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    found = candidate
                    break
        out = {"command": command, "path": path, "found": found, "ours": False, "interpreter": None}
        if not found:
            return out
        try:
            with open(found, "rb") as f:
                head = f.read(4096)
        except OSError as e:
            out["error"] = str(e)
            return out
        out["ours"] = TOIL_WORKER_MARK.encode() in head
        first = head.split(b"\n", 1)[0]
        if not first.startswith(b"#!"):
            out["error"] = "%s does not start with #!" % found
            return out
        words = first[2:].decode("utf-8", "replace").split()
        if words and os.path.basename(words[0]) == "env" and len(words) > 1:
            words = words[1:]
            for d in path.split(":"):
                candidate = os.path.join(d or ".", words[0])
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    words[0] = candidate
                    break
        if not words:
            out["error"] = "%s has an empty #! line" % found
            return out
        out["interpreter"] = words[0]
        if names:
            out.update(self.probe_origins(words[0], names, path))
        return out

    def fix(self):
        """Creates a missing venv, or turns on system site-packages; never installs or removes packages."""
        import subprocess

        done = []
        if not self.venv_python():
            # The system's own python first: its site-packages are the ones the venv must see
            # (Toil and native libraries installed by the administrator), whatever PATH says.
            cmds = [["/usr/bin/python3", "-m", "venv", "--system-site-packages", self.venv],
                    ["python3", "-m", "venv", "--system-site-packages", self.venv],
                    ["virtualenv", "--system-site-packages", self.venv]]
            last = ""
            for cmd in cmds:
                try:
                    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
                except OSError as e:
                    last = str(e)
                    continue
                if out.returncode == 0:
                    done.append("created the virtualenv %s with %s --system-site-packages" % (self.venv, "virtualenv" if cmd[0] == "virtualenv" else cmd[0] + " -m venv"))
                    break
                last = out.stderr.decode("utf-8", "replace").strip()
            else:
                raise Refused("fix-failed", "could not create the virtualenv %s: %s" % (self.venv, last))
        path, line, value = self.pyvenv_cfg()
        if value != "true" and line is not None:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            if line:
                lines[line - 1] = "include-system-site-packages = true"
            else:
                lines.append("include-system-site-packages = true")
            replace_file(path, "\n".join(lines) + "\n", stat.S_IMODE(os.stat(path).st_mode))
            done.append("set include-system-site-packages = true in %s%s" % (path, " (line %d)" % line if line else ""))
        if self.venv_python() and self.ensure_toil_worker():
            done.append("wrote %s, so that jobs a batch system starts run Toil's worker with the venv's python"
                        % self.toil_worker_path())
        return {"done": done}



def check_prefixes(target):
    """A path may not be both a file and a directory (`a` and `a/b`)."""
    dirs = set()
    for path in target:
        parent = path.rpartition("/")[0]
        while parent and parent not in dirs:  # a known parent's own parents are known too
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    clash = [p for p in target if p in dirs]
    if clash:
        raise Refused("bad-path", "%r is both a file and a directory" % clash[0])


def check_space(directory, need):
    try:
        st = os.statvfs(directory)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if free < need + (1 << 20):
        raise Refused("no-space", "not enough free space in %s: %d bytes needed, %d free" % (directory, need, free))


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
                          "leader's sync-cluster, so its TypeScript and its src/worker/agent.py come from different "
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
        rid = req["release"]
        if not valid_release_id(rid):
            raise Refused("bad-request", "invalid release id")
        store.protect = {r for r in req.get("protect", []) if valid_release_id(r)}
        store.collect = req.get("collect", True) is not False
        self.reset()  # a prepare that follows an unfinished one replaces it
        self.activate = req.get("activate", True) is not False
        store.lock(float(req.get("lockTimeout", 60)))
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
        rid = req["release"]
        if not valid_release_id(rid):
            raise Refused("bad-request", "invalid release id")
        store.protect = {r for r in req.get("protect", []) if valid_release_id(r)}
        store.collect = req.get("collect", True) is not False
        self.reset()
        store.lock(float(req.get("lockTimeout", 60)))
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
        import base64

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


class Server:
    """The framed protocol on stdin/stdout: one reply frame for every request frame, whatever
    happens in between. A request's payload is read to its end (by its handler, or drained here),
    so a refused or unknown request leaves the stream at the next frame. Only a frame whose length
    or payload size cannot be believed ends the session: nothing after it can be found again."""

    MAX_FRAME = 256 * 1024 * 1024

    def __init__(self, agent, inp, out):
        self.agent = agent
        self.inp = inp
        self.out = out

    def read_exact(self, n):
        chunks = []
        while n > 0:
            chunk = self.inp.read(min(n, COPY_CHUNK))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_frame(self):
        """The next request as (dict or None for the end of input, payload reader or None), or
        raises Refused: "bad-frame" when the stream is lost, "bad-request" when only this frame is."""
        header = self.inp.read(4)
        if not header:
            return None, None
        if len(header) < 4:
            header += self.read_exact(4 - len(header))
        (length,) = struct.unpack(">I", header)
        if length > self.MAX_FRAME:
            raise Lost("frame length %d is over the limit of %d bytes" % (length, self.MAX_FRAME))
        body = self.read_exact(length)
        try:
            req = json.loads(body.decode("utf-8", "surrogatepass"))
        except ValueError as e:  # UnicodeDecodeError too
            raise Refused("bad-frame", "the request is not JSON: %s" % e)
        if not isinstance(req, dict):
            raise Refused("bad-frame", "the request is not a JSON object")
        payload = None
        if "payload" in req:
            size = req["payload"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise Lost("payload size %r is not a byte count" % (size,))
            payload = BoundedReader(self.inp, size)
        return req, payload

    def reply(self, obj):
        data = json.dumps(obj, ensure_ascii=True).encode("ascii")
        self.out.write(struct.pack(">I", len(data)) + data)
        self.out.flush()

    def handle(self, req, payload):
        op = req.get("op")
        handler = getattr(self.agent, "op_" + op, None) if isinstance(op, str) else None
        if handler is None:
            raise Refused("bad-request", "unknown operation %r" % (op,))
        if op != "hello" and self.agent.store is None:
            raise Refused("bad-request", "%s before hello: the first request of a session must be a hello that succeeded" % op)
        result = handler(req, payload)
        result["ok"] = True
        return result

    def serve(self):
        try:
            while True:
                payload = None
                try:
                    req, payload = self.read_frame()
                    if req is None:
                        return
                    result = self.handle(req, payload)
                except Refused as e:
                    result = {"ok": False, "code": e.code, "message": str(e)}
                except Lost as e:
                    self.reply({"ok": False, "code": "bad-frame", "message": "%s; the stream cannot be followed, "
                                "the agent stops" % e})
                    return
                except EOFError:
                    return
                except OSError as e:
                    code = "no-space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "os-error"
                    result = {"ok": False, "code": code, "message": "%s: %s" % (e.strerror, e.filename or "")}
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    # A request missing a field or holding one of the wrong type: answered, not fatal.
                    what = "missing field %s" % e if isinstance(e, KeyError) else "%s: %s" % (type(e).__name__, e)
                    result = {"ok": False, "code": "bad-request", "message": "malformed request: %s" % what}
                except Exception as e:
                    result = {"ok": False, "code": "internal", "message": "the agent failed: %s: %s" % (type(e).__name__, e)}
                if not result.get("ok"):
                    self.agent.reset()
                if payload is not None:
                    payload.drain()  # whatever the handler left of the payload: the next frame follows it
                self.reply(result)
                try:
                    self.agent.after_reply()
                except Exception:
                    pass  # best effort: whatever is left is collected after the next switch
        except (EOFError, BrokenPipeError):
            return
        finally:
            self.agent.reset()


PROBE_IMPORTS = r"""
import importlib, importlib.util, json, os, sys, sysconfig


def probe(args):
    try:
        import importlib.metadata as md
    except ImportError:
        md = None

    def version_of(dist):
        if not dist or md is None:
            return None
        try:
            return md.version(dist)
        except Exception:
            return None

    out = {"python": "%d.%d.%d" % sys.version_info[:3], "venvSite": sysconfig.get_paths()["purelib"], "modules": {}}
    toil = {"found": False}
    try:
        if args["deep"]:
            m = importlib.import_module("toil")
            origin = getattr(m, "__file__", None)
        else:
            spec = importlib.util.find_spec("toil")
            origin = spec.origin if spec else None
        if origin:
            toil = {"found": True, "origin": os.path.realpath(origin), "version": version_of("toil")}
    except Exception as e:
        toil = {"found": False, "error": "%s: %s" % (type(e).__name__, e)}
    out["toil"] = toil
    for item in args["modules"]:
        name = item["module"]
        try:
            spec = importlib.util.find_spec(name)
            out["modules"][name] = {"found": spec is not None,
                                    "origin": os.path.realpath(spec.origin) if spec and spec.origin else None,
                                    "version": version_of(item.get("dist"))}
        except Exception as e:
            out["modules"][name] = {"found": False, "error": "%s: %s" % (type(e).__name__, e)}
    return out


if __name__ == "__main__":
    print(json.dumps(probe(json.loads(sys.argv[1]))))
"""


PROBE_ORIGINS = r"""
import importlib.util, json, os, sys


def origins_of(names, find):
    origins = {}
    for name in names:
        try:
            spec = find(name)
        except Exception as e:
            origins[name] = {"error": "%s: %s" % (type(e).__name__, e)}
            continue
        if spec is None:
            origins[name] = None
        else:
            where = spec.origin if spec.origin not in (None, "namespace") else next(iter(spec.submodule_search_locations or []), None)
            origins[name] = {"origin": where, "real": os.path.realpath(where) if where else None}
    return origins


if __name__ == "__main__":
    print(json.dumps({"executable": sys.executable, "origins": origins_of(json.loads(sys.argv[1]), importlib.util.find_spec)}))
"""


class BoundedReader:
    """The payload of one request: reads stop at its end so the next frame stays intact."""

    def __init__(self, raw, size):
        self.raw = raw
        self.left = size

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        if n is None or n < 0 or n > self.left:
            n = self.left
        data = self.raw.read(n)
        if not data:
            raise EOFError
        self.left -= len(data)
        return data

    def drain(self):
        while self.left > 0:
            self.read(min(self.left, COPY_CHUNK))


if __name__ == "__main__":
    os.umask(0o022)
    sys.stdout.buffer.write(ANNOUNCE + b"%d\n" % AGENT_VERSION)
    sys.stdout.buffer.flush()
    server = Server(Agent(), sys.stdin.buffer, sys.stdout.buffer)
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

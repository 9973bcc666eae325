"""One project's directory on the worker: its releases, `current`, the lock, shared trees, pins,
live runs, the publish order, the origin and garbage collection.

Layout (docs/DESIGN.md section 5):
    DEPLOY/PROJECT/releases/ID/...        immutable once published
    DEPLOY/PROJECT/current -> releases/ID switched with rename(2)
    DEPLOY/PROJECT/.lock                  flock(2): one pusher at a time; the kernel drops it if we die
    DEPLOY/PROJECT/.staging-*             a release being built; removed by the next lock holder
    DEPLOY/PROJECT/trees/HASH/...         directories shared by releases (content-addressed, immutable);
                                          a release links to the trees it shares with others
    DEPLOY/PROJECT/.trash-*               old releases and trees renamed away, deleted in the background
    DEPLOY/PROJECT/published/ID           when release ID was published: the releases' order
    DEPLOY/PROJECT/pins/ID                touched by every interpreter that runs release ID (selector.py)
    DEPLOY/PROJECT/runs/ID@PID@START@HOST a workflow run's first interpreter (selector.py, record_run)
    DEPLOY/PROJECT/origin.json            the leader host and root the releases come from (record_origin)
    DEPLOY/PROJECT/verified/HOST.json     the host's last full verification (verify_record.py)
    DEPLOY/PROJECT/layout                 LAYOUT_VERSION: a directory of another layout is refused
"""

import errno
import fcntl
import json
import os
import shutil
import stat
import time

from .durable import fsync_path, remove_in_background, replace_file
from .framing import Refused
from .release_files import MANIFEST_NAME, TREES, tree_hashes, valid_release_id
from .sources import SELECTOR

# The on-disk layout's version, in DEPLOY/PROJECT/layout (ReleaseStore.check_layout).
LAYOUT_VERSION = 2
LAYOUT_NAME = "layout"
TRASH_PREFIX = ".trash-"
PINS = "pins"
RUNS = "runs"
PUBLISHED = "published"
# How far apart two publishes' recorded times are at least, so that their order survives a float.
PUBLISH_STEP = 0.001
# A release an interpreter ran within this many seconds is in use by a workflow run: never collected.
PIN_SECONDS = 7 * 24 * 3600

# The agent reads a release's roots with the selector's own function, so the two cannot disagree.
SELECTOR_PARTS = {"__name__": "sync_cluster_selector"}
exec(SELECTOR, SELECTOR_PARTS)
RELEASE_ENV = SELECTOR_PARTS["RELEASE_ENV"]
PTH_COMMENT = "# sync-cluster project "


def selector_pth_content(project_dir):
    """The project's .pth: a comment naming the project directory (so `check` can tell whose it
    is), then the import line that runs SELECTOR; ascii() keeps any file name on one line."""
    return "%s%s\nimport sys; exec(%s, {'PROJECT_DIR': %s})\n" % (
        PTH_COMMENT, ascii(project_dir), ascii(SELECTOR), ascii(project_dir))


def pth_comment_project(first_line):
    """The project directory a .pth's first line names as ours, or None."""
    if not first_line.startswith(PTH_COMMENT):
        return None
    import ast
    try:
        named = ast.literal_eval(first_line[len(PTH_COMMENT):])
    except (ValueError, SyntaxError):
        return None
    return named if isinstance(named, str) else None


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
        without the file is taken to be of this layout: it gets the file, as does a new directory
        (create). Nothing is written where nothing exists yet unless asked,
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
        self.record_publish(rid, min(times) - 1 if times else time.time())

    # ---- the publish order -------------------------------------------------------------------
    def publish_record_path(self, rid):
        return os.path.join(self.project_dir, PUBLISHED, rid)

    def record_publish(self, rid, at):
        """Records when `rid` was published (seconds since the epoch), which orders the releases.
        Not made durable: after a power loss a lost record only orders its release by its
        directory's time (see releases), as on a directory no agent recorded anything in."""
        os.makedirs(os.path.join(self.project_dir, PUBLISHED), exist_ok=True)
        path = self.publish_record_path(rid)
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "w", encoding="ascii") as f:
            f.write(repr(float(at)) + "\n")
        os.replace(tmp, path)

    def recorded_publish(self, rid):
        """The publish time recorded for `rid`, or None when there is none to believe."""
        try:
            with open(self.publish_record_path(rid), encoding="ascii") as f:
                return float(f.read().strip())
        except (OSError, ValueError):
            return None

    def publish_next(self, rid):
        """Makes `rid` the newest release: a recorded time after every other release's, even when
        the clock has not moved since the last publish (two pushes in the same tick)."""
        newest = max((r["time"] for r in self.releases() if r["id"] != rid), default=0.0)
        self.record_publish(rid, max(time.time(), newest + PUBLISH_STEP))

    def current(self):
        try:
            target = os.readlink(os.path.join(self.project_dir, "current"))
        except OSError:
            return None
        rid = os.path.basename(target.rstrip("/"))
        return rid if valid_release_id(rid) else None

    def releases(self):
        """The releases this node keeps, newest first, each with its publish time."""
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
            at = self.recorded_publish(name)
            if at is None:  # a directory no agent of this version published into, or a lost record
                try:
                    at = os.stat(path).st_mtime
                except OSError:
                    continue
            out.append({"id": name, "time": at})
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
            self.publish_next(rid)
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
        self.collect_publish_records()
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

    def collect_publish_records(self):
        """Publish records of releases that are gone, and what a killed record write left."""
        try:
            names = os.listdir(os.path.join(self.project_dir, PUBLISHED))
        except OSError:
            return
        for name in names:
            if not (valid_release_id(name) and os.path.isdir(os.path.join(self.releases_dir, name))):
                try:
                    os.unlink(self.publish_record_path(name))
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

"""Run by the venv's .pth at every interpreter start, so it must stay cheap and never raise: puts
one release on sys.path and pins it for every process started below this one.

The .pth carries this file's source as text (sources.py, VenvDoctor.pth_content) and runs it with
PROJECT_DIR set; the agent runs it too, for release_roots, so the two cannot disagree. Nothing
here may import at module level: it runs inside every interpreter of the venv.

RELEASE_ENV holds `PROJECT:ID` entries separated by commas (a bare ID is meant for every project).
The first interpreter of a run (the Toil leader) finds no entry for its project: it takes
`current`, exports its entry, and records the run (runs/: its pid and start time, so the agent can
tell while the run's leader lives). The batch system copies the leader's variables into every job,
so a job on any node imports that same release even after a later push. A job whose release is
not on its node imports nothing of the project: a finder refuses the project's top-level names
with a message naming the release and the node, since falling back to another release would run
other code than the run's without a word. Every interpreter but sync-cluster's own
(SYNC_CLUSTER_NO_PIN) touches the release's pin, so that garbage collection keeps it. The roots go
before site-packages, so an older installed copy of the workflow cannot shadow the release (the
leader's own start directory wins the same way).
"""

RELEASE_ENV = "SYNC_CLUSTER_RELEASE"

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


# The .pth runs this source with PROJECT_DIR set; the agent runs it without, for its functions.
if "PROJECT_DIR" in globals():
    try:
        select(PROJECT_DIR)
    except Exception:
        pass

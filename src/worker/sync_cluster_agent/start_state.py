"""What this agent's interpreter read at its start to build sys.path and its import hooks, and
whether it still holds: while it does, check's quick probe is answered in-process, with no python
started, and that answer is the one a fresh interpreter of the venv would give.

Read at start (import_fingerprint.py): the python this agent runs (the binary it resolves to),
pyvenv.cfg, sitecustomize and usercustomize by content, every directory on sys.path (listing and
mtime, each .pth by content and the directories it names), the site directories site.py skipped
as missing (a user site made by `pip install --user` joins sys.path only at the next start), and
the variables that move sys.path.

The selector .pth files of this agent's own version (byte for byte) are the exception: what one
does at a new interpreter's start (put the release `current` names on sys.path) is done in-process
for the probe's time (as_fresh_interpreter), since `current` moves with every push. Those that ran
at this agent's start are found then (own_selectors), and what they did is left out of the state
read at start: the release they put on sys.path, and the release they named in the environment.
One this agent created itself (the project's selector, written at its first publish) is accepted
only when the file did not exist, everything else was as read at start just before it was
written, and just after it the only difference is that file in its directory (whose listing gained
exactly its name). Anything else (a .pth of someone else, a package installed, pyvenv.cfg edited,
the interpreter replaced) makes every quick probe start a fresh interpreter until it is undone.
"""

import contextlib
import hashlib
import os
import sys

from .import_fingerprint import import_state, listing_digest
from .release_store import RELEASE_ENV, SELECTOR_PARTS, pth_comment_project, selector_pth_content


def start_directory():
    try:
        return os.getcwd()
    except OSError:
        return None


def site_directories():
    """The directories site.py reads .pth files from (some may not exist)."""
    try:
        import site
        return site.getsitepackages() + [site.getusersitepackages()]
    except Exception:  # an old virtualenv's own site.py has neither
        return []


def own_selectors(directories):
    """{path: project directory} of each .pth in `directories` that is this agent's selector."""
    found = {}
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not (name.startswith("sync-cluster-") and name.endswith(".pth")):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as f:
                    content = f.read()
            except OSError:
                continue
            project_dir = pth_comment_project(content.split("\n", 1)[0])
            if project_dir is not None and content == selector_pth_content(project_dir):
                found[path] = project_dir
    return found


def selected_by(entry, project_dirs):
    """Whether the sys.path entry is a release root one of these projects' selectors put there."""
    return any(entry.startswith(os.path.join(d, "releases") + os.sep) for d in project_dirs)


def read_at_start(skipped=()):
    """sys.path as this interpreter built it (without the start directory, which a probe run from
    "/" does not have, and the releases the selectors of `skipped` projects put there), then the
    site directories site.py skipped because they did not exist."""
    cwd = start_directory()
    dirs = [os.path.abspath(p) for p in sys.path if p not in ("", cwd) and not selected_by(p, skipped)]
    return dirs + [d for d in site_directories() if d not in dirs]


def agent_import_state(skipped=()):
    """What a new interpreter of this agent's python would read at its start, read cheaply."""
    customize = [getattr(sys.modules.get(n), "__file__", None) for n in ("sitecustomize", "usercustomize")]
    files = [os.path.join(sys.prefix, "pyvenv.cfg")] + [f for f in customize if f]
    return import_state(read_at_start(skipped), files, [sys.executable], os.environ)


class StartState:
    """What this agent read at its start, without what its own selectors did, plus the .pth files
    it created since."""

    def __init__(self, read=None, selectors=None):
        # Each selector .pth of this agent's version, and the project directory it serves.
        self.created = own_selectors(site_directories()) if selectors is None else dict(selectors)
        if self.created and "SYNC_CLUSTER_NO_PIN" in os.environ:
            # The agent is started with no release in its environment (agentCommand): one there
            # now was set by a selector at this start, and would make a fresh interpreter take it.
            os.environ.pop(RELEASE_ENV, None)
        self.read = read or (lambda: agent_import_state(self.created.values()))
        self.expected = self.read()

    def holds(self):
        """Whether a fresh interpreter would read what this one read at start (and its own .pth files)."""
        return self.read() == self.expected

    def create_pth(self, path, content, project_dir, write):
        """Runs write(), which writes `content` to the .pth at `path`; counted as this agent's own
        when it is a new file and the only change."""
        directory = os.path.dirname(path)
        new = not os.path.lexists(path)
        try:
            names = os.listdir(directory)
        except OSError:
            names = None
        before = self.read()
        write()
        if not new or names is None or before != self.expected:
            return
        after = self.read()
        digest = hashlib.sha256(content.encode("utf-8", "surrogateescape")).hexdigest()
        if own_creation(before, after, path, names, digest):
            self.expected = after
            self.created[path] = project_dir

    @contextlib.contextmanager
    def as_fresh_interpreter(self):
        """sys.path as a fresh interpreter started from "/" builds it: without the start directory,
        and with the release each .pth this agent created selects (it runs the selector as the
        .pth does, pinning nothing); sys.path, sys.meta_path and the environment are put back after."""
        saved_path, saved_meta = list(sys.path), list(sys.meta_path)
        saved_env = {k: os.environ.get(k) for k in (RELEASE_ENV, "SYNC_CLUSTER_NO_PIN")}
        cwd = start_directory()
        served = set(self.created.values())
        try:
            sys.path[:] = [p for p in sys.path if p not in ("", cwd) and not selected_by(p, served)]
            os.environ["SYNC_CLUSTER_NO_PIN"] = "1"
            for project_dir in sorted(served):
                try:
                    SELECTOR_PARTS["select"](project_dir)
                except Exception:
                    pass  # as in the .pth: a selector error never stops an interpreter
            yield
        finally:
            sys.path[:] = saved_path
            sys.meta_path[:] = saved_meta
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def own_creation(before, after, path, names, digest):
    """Whether `after` differs from `before` by nothing but the file `path` (of sha256 `digest`)
    created in its directory, which held `names` when `before` was read."""
    directory = os.path.dirname(path)

    def listing_of(state):
        return [e[3] for e in state if e[0] == directory and len(e) == 4 and e[1] == "dir"]

    def rest(state):
        return [e for e in state if e[0] not in (directory, path)]

    grown = listing_digest(names + [os.path.basename(path)])
    return (rest(before) == rest(after) and set(listing_of(before)) == {listing_digest(names)}
            and set(listing_of(after)) == {grown} and [e for e in after if e[0] == path] == [(path, digest)])


# As this interpreter found it at start.
START = StartState()

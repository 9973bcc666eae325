"""What decides where a new interpreter of the venv imports each top-level name from, read without
starting one: the interpreter, the venv's pyvenv.cfg, every directory on its sys.path (listing and
mtime, each .pth by content and the directories its path lines name), sitecustomize, and the
environment variables that shape sys.path. Listing a directory and reading a few small files costs
a millisecond; starting the interpreter costs fifty.

Edits inside the files of an installed package are left out on purpose: they change what a module
does, not which directory a top-level name loads from (installers replace files, which changes the
directory's mtime and listing; a .pth or sitecustomize, which can move sys.path, is read whole).
"""

import hashlib
import json
import os
import stat

# Of the environment a job's interpreter gets, what can change its sys.path: the user site lives
# under HOME (or PYTHONUSERBASE); the PYTHON* ones move it directly.
SYS_PATH_VARIABLES = ("HOME", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONPATH", "PYTHONPLATLIBDIR",
                      "PYTHONSAFEPATH", "PYTHONUSERBASE", "VIRTUAL_ENV")


def content_digest(path):
    """sha256 of a file's bytes; None for a file that cannot be read (missing included)."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def pth_path_lines(text):
    """The lines of a .pth that site.py adds to sys.path (when the directory they name exists):
    not comments, not blank, not the `import` lines it runs."""
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith(("import ", "import\t")):
            continue
        lines.append(line.rstrip())
    return lines


def listing_digest(names):
    """A directory's listing (its names, sorted) as one digest."""
    return hashlib.sha256("\0".join(sorted(names)).encode("utf-8", "surrogateescape")).hexdigest()


def directory_state(path):
    """One sys.path entry: a directory by its mtime and the names in it, each .pth in it by
    content and each directory a .pth names by whether it exists (site.py skips a missing one, so
    its appearance changes sys.path); a file (a zip) by size and mtime; or missing."""
    try:
        st = os.stat(path)
    except OSError:
        return [(path, "missing")]
    if not stat.S_ISDIR(st.st_mode):
        return [(path, "file", st.st_size, st.st_mtime_ns)]
    try:
        names = sorted(os.listdir(path))
    except OSError as e:
        return [(path, "unreadable", e.errno)]
    state = [(path, "dir", st.st_mtime_ns, listing_digest(names))]
    for name in names:
        if not name.endswith(".pth"):
            continue
        full = os.path.join(path, name)
        try:
            with open(full, "rb") as f:
                data = f.read()
        except OSError:
            state.append((full, None))
            continue
        state.append((full, hashlib.sha256(data).hexdigest()))
        for line in pth_path_lines(data.decode("utf-8", "surrogateescape")):
            named = os.path.join(path, line)
            state.append((named, os.path.exists(named)))
    return state


def package_state(dirs, names):
    """For each top-level name, the `__init__` files of a directory of that name in each of `dirs`:
    an `__init__.py` added inside a namespace directory makes it a regular package, which wins over
    the release's namespace portion, yet changes neither the listing nor the mtime of `dirs`."""
    state = []
    wanted = set(names)
    for d in dirs:
        try:
            present = wanted.intersection(os.listdir(d))
        except OSError:
            continue  # the directory's own state says so
        for name in sorted(present):
            path = os.path.join(d, name)
            try:
                inits = sorted(n for n in os.listdir(path) if n.startswith("__init__"))
            except OSError:
                continue  # a module file, not a directory: the listing of `d` covers it
            state.append((path, "package", inits))
    return state


def import_state(dirs, files=(), interpreters=(), env=None):
    """What a new interpreter reads at start to build sys.path and its import hooks, cheaply:
    `interpreters` by the binary they resolve to (realpath, size, mtime), `files` by content
    (pyvenv.cfg, sitecustomize), `dirs` as directory_state reads them, and of `env` the
    SYS_PATH_VARIABLES."""
    state = []
    for path in interpreters:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
            state.append(("interpreter", path, real, st.st_size, st.st_mtime_ns))
        except OSError:
            state.append(("interpreter", path, real, None))
    for path in files:
        state.append(("file", path, content_digest(path)))
    for path in dirs:
        state.extend(directory_state(path))
    if env is not None:
        state.append(("env", [(name, env.get(name)) for name in SYS_PATH_VARIABLES]))
    return state


def release_layout(release_dir, roots, names):
    """What a release offers a new interpreter under each top-level name, per directory it puts on
    sys.path (`roots`, named relative to `release_dir`): every entry that is the name or starts
    with it and a dot (a package or namespace directory, `name.py`, an extension `name.*.so`),
    whether it is a directory, a file or something else, and a directory's `__init__` files.
    The import system chooses among exactly these, so two releases with the same layout, at the
    same place on the same sys.path, send each name to the same file of their own."""
    wanted = set(names)
    layout = []
    for root in roots:
        entries = []
        try:
            with os.scandir(root) as listing:
                found = [e for e in listing if e.name.partition(".")[0] in wanted]
        except OSError as e:
            layout.append((os.path.relpath(root, release_dir), "unreadable", e.errno))
            continue
        for entry in sorted(found, key=lambda e: e.name):
            try:
                if entry.is_dir():
                    inits = sorted(n for n in os.listdir(entry.path) if n.startswith("__init__"))
                    entries.append((entry.name, "dir", inits))
                else:
                    entries.append((entry.name, "file" if entry.is_file() else "other"))
            except OSError as e:
                entries.append((entry.name, "unreadable", e.errno))
        layout.append((os.path.relpath(root, release_dir), entries))
    return json.loads(json.dumps(layout))  # as a record read back from JSON holds it: lists, not tuples


def fingerprint(state):
    """A short digest of an import_state (plus whatever else the caller adds to it)."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode("ascii")).hexdigest()

"""A release's files as the manifest lists them: the release id that proves their content, the
shared trees they make, and the paths and sizes a release may have."""

import hashlib
import os

from .framing import Refused

MANIFEST_NAME = ".sync-cluster-manifest.json"
TREES = "trees"


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

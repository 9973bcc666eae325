"""A release being built under the store's lock: linked from what the worker has, filled from the
leader's archive, each file checked against the manifest, then published durably."""

import errno
import hashlib
import json
import os
import shutil
import stat
import tarfile

from .durable import DURABLE_EACH_MAX, make_durable
from .framing import COPY_CHUNK, Refused
from .release_files import MANIFEST_NAME, TREES, safe_relative, tree_hashes, tree_link


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
        # every creation and removal is slow (NFS, a loaded disk) is most of a small push.
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
                    raise Refused("os-error", "cannot reuse the old release's directory: %s" % e)

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
            # "r|*": a gzip-compressed archive too (the leader compresses what crosses ClusterShell's tree).
            archive = tarfile.open(fileobj=reader, mode="r|*", encoding="utf-8", errors="surrogateescape")
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

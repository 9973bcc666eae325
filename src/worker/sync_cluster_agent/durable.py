"""Writing to the node's disk so that a power loss leaves the old state or the new one whole,
and removing what is renamed away without making anybody wait for it."""

import errno
import os
import shutil


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

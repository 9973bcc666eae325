"""What the module tests share: temporary directories, and files given by their content."""

import hashlib
import os
import shutil
import tempfile
import unittest


class TempDirTest(unittest.TestCase):
    """A test with a fresh directory of its own, removed after it."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sync-cluster-agent-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


def manifest_of(files, mode=0o644):
    """[path, size, mode, sha256] rows, as the leader sends them, for files given by content."""
    return sorted([path, len(data.encode()), mode, hashlib.sha256(data.encode()).hexdigest()]
                  for path, data in files.items())


def archive_of(files):
    """A tar archive of files given by content, as the leader uploads it."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data.encode())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data.encode()))
    buf.seek(0)
    return buf

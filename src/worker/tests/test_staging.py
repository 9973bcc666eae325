import gzip
import io
import os
import unittest

from sync_cluster_agent.framing import Refused
from sync_cluster_agent.release_files import MANIFEST_NAME, release_id_of
from sync_cluster_agent.release_store import ReleaseStore
from sync_cluster_agent.staging import Staging

from .helpers import TempDirTest, archive_of, manifest_of

FILES = {"main.py": "M = 1\n", "pkg/__init__.py": "", "pkg/mod.py": "V = 2\n"}


class StagingTest(TempDirTest):
    def setUp(self):
        super(StagingTest, self).setUp()
        self.store = ReleaseStore(self.dir, "proj", 3)
        self.store.lock(0)
        self.addCleanup(self.store.unlock)

    def stage(self, files):
        rows = [tuple(f) for f in manifest_of(files)]
        staging = Staging(self.store, release_id_of(rows), rows)
        target = {f[0]: f for f in rows}
        staging.build(target, dict(target), {}, None, {})
        return staging

    def test_a_release_built_from_the_archive_is_published_with_its_trees_shared(self):
        staging = self.stage(FILES)
        received, nbytes = staging.extract(archive_of(FILES))
        self.assertEqual(received, set(FILES))
        self.assertEqual(nbytes, sum(len(v) for v in FILES.values()))
        staging.publish()
        release = os.path.join(self.store.releases_dir, staging.release)
        self.assertTrue(os.path.isfile(os.path.join(release, MANIFEST_NAME)))
        self.assertTrue(os.path.islink(os.path.join(release, "pkg")), "a directory becomes a shared tree")
        with open(os.path.join(release, "pkg", "mod.py")) as f:
            self.assertEqual(f.read(), "V = 2\n")
        # The next release with the same package links to its tree: what the leader sends of it is
        # checked, then dropped.
        again = self.stage(dict(FILES, **{"main.py": "M = 2\n"}))
        self.assertTrue(os.path.islink(os.path.join(again.path, "pkg")))
        self.assertEqual(again.discard_paths, {"pkg/__init__.py", "pkg/mod.py"})
        again.discard()

    def test_a_gzip_compressed_archive_is_read_as_the_plain_one(self):
        staging = self.stage(FILES)
        plain = archive_of(FILES)
        received, nbytes = staging.extract(io.BytesIO(gzip.compress(plain.read())))
        self.assertEqual(received, set(FILES))
        self.assertEqual(nbytes, sum(len(v) for v in FILES.values()))
        staging.discard()

    def test_content_that_does_not_match_its_checksum_is_refused(self):
        staging = self.stage(FILES)
        with self.assertRaises(Refused) as caught:
            staging.extract(archive_of(dict(FILES, **{"main.py": "M = 9\n"})))
        self.assertEqual(caught.exception.code, "corrupt")
        staging.discard()

    def test_an_entry_the_manifest_does_not_list_is_refused(self):
        staging = self.stage(FILES)
        with self.assertRaises(Refused) as caught:
            staging.extract(archive_of(dict(FILES, **{"extra.py": ""})))
        self.assertEqual(caught.exception.code, "bad-archive")
        staging.discard()
        self.assertFalse(os.path.exists(staging.path))

    def test_a_file_not_in_the_base_release_cannot_be_reused(self):
        rows = [tuple(f) for f in manifest_of(FILES)]
        staging = Staging(self.store, release_id_of(rows), rows)
        target = {f[0]: f for f in rows}
        with self.assertRaises(Refused) as caught:
            staging.build(target, {}, {}, None, {})
        self.assertEqual(caught.exception.code, "bad-request")
        staging.discard()


if __name__ == "__main__":
    unittest.main()

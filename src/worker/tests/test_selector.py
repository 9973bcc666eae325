import contextlib
import io
import os
import unittest

from sync_cluster_agent import selector

from .helpers import TempDirTest

RID = "0123456789abcdef01234567"


class WantedReleasesTest(unittest.TestCase):
    def test_the_projects_own_entry_wins_over_a_bare_id(self):
        value = "aaaaaaaa,other:bbbbbbbb,proj:cccccccc"
        self.assertEqual(selector.wanted_releases(value, "proj"), ["cccccccc"])
        self.assertEqual(selector.wanted_releases(value, "none"), ["aaaaaaaa"])

    def test_entries_that_are_no_release_id_are_ignored(self):
        self.assertEqual(selector.wanted_releases("proj:xyz,proj:ABCDEF12,,", "proj"), [])


class RootsAndNamesTest(TempDirTest):
    def test_a_release_with_roots_puts_each_on_the_path_in_order(self):
        release = self.path("releases", RID)
        for n in ("10", "2", "x"):
            os.makedirs(os.path.join(release, ".roots", n))
        roots = selector.release_roots(release)
        self.assertEqual([os.path.basename(r) for r in roots], ["2", "10"])
        self.assertEqual(selector.release_roots(self.path("plain")), [self.path("plain")])

    def test_the_top_level_names_of_every_release(self):
        os.makedirs(self.path("releases", RID, "pkg"))
        open(self.path("releases", RID, "mod.py"), "w").close()
        open(self.path("releases", RID, "not-a-name.py"), "w").close()
        self.assertEqual(selector.top_level_names(self.path("releases")), {"pkg", "mod"})

    def test_a_job_whose_release_is_missing_is_refused_its_imports_with_a_message(self):
        finder = selector.MissingRelease(self.path("proj"), RID, {"pkg"})
        self.assertIsNone(finder.find_spec("json"))
        stderr = io.StringIO()
        with self.assertRaises(ImportError) as caught, contextlib.redirect_stderr(stderr):
            finder.find_spec("pkg")
        self.assertEqual(stderr.getvalue().strip(), str(caught.exception))
        self.assertIn("release %s of project proj" % RID, str(caught.exception))


if __name__ == "__main__":
    unittest.main()

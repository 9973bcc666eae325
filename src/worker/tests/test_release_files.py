import unittest

from sync_cluster_agent.framing import Refused
from sync_cluster_agent.release_files import (check_prefixes, release_id_of, safe_relative, tree_hashes, tree_link,
                                              valid_release_id)

from .helpers import manifest_of


class ReleaseIdTest(unittest.TestCase):
    def test_the_id_is_the_leaders_for_the_same_files_in_any_order(self):
        files = [tuple(f) for f in manifest_of({"a.py": "A = 1\n", "p/b.py": "B = 2\n"})]
        self.assertEqual(release_id_of(files), release_id_of(list(reversed(files))))
        self.assertEqual(len(release_id_of(files)), 24)

    def test_a_change_of_mode_changes_the_id(self):
        files = manifest_of({"a.py": "A = 1\n"})
        self.assertNotEqual(release_id_of(files), release_id_of(manifest_of({"a.py": "A = 1\n"}, 0o755)))


class TreeTest(unittest.TestCase):
    def test_two_releases_share_a_directory_exactly_when_everything_below_it_is_the_same(self):
        one = tree_hashes(manifest_of({"p/a.py": "1", "p/q/b.py": "2", "r/c.py": "3"}))
        two = tree_hashes(manifest_of({"p/a.py": "1", "p/q/b.py": "2", "r/c.py": "4"}))
        self.assertEqual(one["p"], two["p"])
        self.assertEqual(one["p/q"], two["p/q"])
        self.assertNotEqual(one["r"], two["r"])
        self.assertNotIn("", one)

    def test_a_top_level_tree_links_up_two_levels_and_a_nested_one_to_a_sibling(self):
        self.assertEqual(tree_link("p", "h1"), "../../trees/h1")
        self.assertEqual(tree_link("p/q", "h2"), "../h2")


class PathTest(unittest.TestCase):
    def test_paths_that_leave_the_release_are_unsafe(self):
        for path in ("", "/etc/passwd", "a/../b", "./a", "a//b", "a\0b", None):
            self.assertFalse(safe_relative(path), repr(path))
        self.assertTrue(safe_relative("p/q/m.py"))

    def test_release_ids_are_lowercase_hex_of_8_to_64(self):
        self.assertTrue(valid_release_id("0123abcd"))
        for rid in ("0123abc", "0123ABCD", "x" * 10, 12345678, "a" * 65):
            self.assertFalse(valid_release_id(rid), repr(rid))

    def test_a_path_may_not_be_both_a_file_and_a_directory(self):
        check_prefixes({"a/b": 1, "c": 1})
        with self.assertRaises(Refused) as caught:
            check_prefixes({"a": 1, "a/b": 1})
        self.assertEqual(caught.exception.code, "bad-path")


if __name__ == "__main__":
    unittest.main()

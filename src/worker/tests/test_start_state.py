import os
import unittest

from sync_cluster_agent.import_fingerprint import import_state
from sync_cluster_agent.release_store import selector_pth_content
from sync_cluster_agent.start_state import StartState, own_selectors, selected_by

from .helpers import TempDirTest

PTH = "# sync-cluster project '/deploy/proj'\nimport sys\n"


class StartStateTest(TempDirTest):
    """The agent's own .pth is the one change its start state allows: created by it, as the only
    change, with the content it wrote."""

    def setUp(self):
        super(StartStateTest, self).setUp()
        self.site = self.path("site-packages")
        os.makedirs(self.site)
        self.cfg = self.path("pyvenv.cfg")
        self.write(self.cfg, "include-system-site-packages = true\n")
        self.pth = os.path.join(self.site, "sync-cluster-proj.pth")
        self.state = StartState(lambda: import_state([self.site], [self.cfg]), selectors={})

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def create(self, also=lambda: None):
        def write():
            self.write(self.pth, PTH)
            also()
        self.state.create_pth(self.pth, PTH, "/deploy/proj", write)

    def test_its_own_pth_created_is_allowed(self):
        self.create()
        self.assertTrue(self.state.holds())
        self.assertEqual(self.state.created, {self.pth: "/deploy/proj"})

    def test_a_change_after_its_own_pth_is_not(self):
        self.create()
        os.mkdir(os.path.join(self.site, "newpkg"))
        self.assertFalse(self.state.holds())

    def test_a_package_installed_beside_it_at_the_same_time_is_not(self):
        self.create(also=lambda: os.mkdir(os.path.join(self.site, "newpkg")))
        self.assertFalse(self.state.holds())
        self.assertEqual(self.state.created, {})

    def test_pyvenv_cfg_edited_at_the_same_time_is_not(self):
        self.create(also=lambda: self.write(self.cfg, "include-system-site-packages = false\n"))
        self.assertFalse(self.state.holds())

    def test_a_change_before_its_own_pth_is_not_absorbed(self):
        self.write(os.path.join(self.site, "other.pth"), "/elsewhere\n")
        self.create()
        self.assertFalse(self.state.holds())
        self.assertEqual(self.state.created, {})

    def test_a_pth_it_replaced_is_not_its_own(self):
        self.write(self.pth, "/deploy/proj/current\n")  # an older sync-cluster's plain path line
        state = StartState(self.state.read, selectors={})
        state.create_pth(self.pth, PTH, "/deploy/proj", lambda: self.write(self.pth, PTH))
        self.assertFalse(state.holds())

    def test_content_other_than_it_meant_is_not_its_own(self):
        self.state.create_pth(self.pth, PTH, "/deploy/proj", lambda: self.write(self.pth, PTH + "/elsewhere\n"))
        self.assertFalse(self.state.holds())



class OwnSelectorsTest(TempDirTest):
    """The selector .pth files that ran at an agent's start: what they put on sys.path is left out
    of its start state, since the release `current` names moves with every push."""

    def write(self, name, text):
        os.makedirs(self.path("site"), exist_ok=True)
        with open(os.path.join(self.path("site"), name), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        return os.path.join(self.path("site"), name)

    def test_only_this_versions_selector_byte_for_byte(self):
        ours = self.write("sync-cluster-proj.pth", selector_pth_content("/deploy/proj"))
        other_dir = self.write("sync-cluster-other.pth", selector_pth_content("/deploy/ü other"))
        self.write("sync-cluster-old.pth", "/deploy/old/current\n")  # an older version's plain path line
        self.write("sync-cluster-edited.pth", selector_pth_content("/deploy/edited") + "import os\n")
        self.write("sync-cluster-claims.pth", "# sync-cluster project '/deploy/claims'\nimport sys\n")
        self.write("zz-elsewhere.pth", selector_pth_content("/deploy/named-otherwise"))
        found = own_selectors([self.path("site"), self.path("missing")])
        self.assertEqual(found, {ours: "/deploy/proj", other_dir: "/deploy/ü other"})

    def test_release_roots_of_those_projects_only(self):
        self.assertTrue(selected_by("/deploy/proj/releases/abc/src", ["/deploy/proj"]))
        self.assertTrue(selected_by("/deploy/proj/releases/abc", ["/deploy/x", "/deploy/proj"]))
        self.assertFalse(selected_by("/deploy/proj/releases", ["/deploy/proj"]))
        self.assertFalse(selected_by("/deploy/project/releases/abc", ["/deploy/proj"]))
        self.assertFalse(selected_by("/deploy/proj/current", ["/deploy/proj"]))
        self.assertFalse(selected_by("/deploy/proj/releases/abc", []))


if __name__ == "__main__":
    unittest.main()

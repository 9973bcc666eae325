import os
import unittest

from sync_cluster_agent.import_fingerprint import fingerprint, import_state, package_state, pth_path_lines

from .helpers import TempDirTest


class ImportFingerprintTest(TempDirTest):
    """Every change that can move where a new interpreter imports a name from changes the
    fingerprint, even one that leaves sizes and mtimes as they were."""

    def setUp(self):
        super(ImportFingerprintTest, self).setUp()
        self.site = self.path("site-packages")
        self.user_site = self.path("user", "site-packages")
        os.makedirs(self.site)
        self.cfg = self.path("pyvenv.cfg")
        self.write(self.cfg, "home = /usr/bin\ninclude-system-site-packages = true\n")
        self.elsewhere = self.path("elsewhere")
        self.write(os.path.join(self.site, "extra.pth"), "# a comment\n%s\nimport sys; sys.path.insert(0, '/a')\n"
                   % self.elsewhere)
        self.env = {"HOME": "/home/alice", "PATH": "/usr/bin"}

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def state(self):
        return fingerprint(import_state([self.site, self.user_site], [self.cfg], [self.path("python")], self.env))

    def unchanged_times(self, *paths):
        """Runs a change, then puts back the mtimes of `paths` (and of their directories)."""
        saved = {}
        for p in paths:
            for q in (p, os.path.dirname(p)):
                if os.path.exists(q):
                    saved[q] = os.stat(q).st_mtime_ns
        return lambda: [os.utime(q, ns=(t, t)) for q, t in saved.items()]

    def assertChanges(self, change, *keep_times_of):
        before = self.state()
        restore = self.unchanged_times(*keep_times_of)
        change()
        restore()
        self.assertNotEqual(self.state(), before)

    def test_unchanged_is_the_same(self):
        self.assertEqual(self.state(), self.state())

    def test_a_pth_added(self):
        self.assertChanges(lambda: self.write(os.path.join(self.site, "zzz.pth"), "import sys\n"), self.site)

    def test_a_pth_edited_to_the_same_size_and_mtime(self):
        pth = os.path.join(self.site, "extra.pth")
        self.assertChanges(lambda: self.write(pth, "# a comment\n%s\nimport sys; sys.path.insert(0, '/b')\n"
                                              % self.elsewhere), pth)

    def test_a_package_added_beside_the_others(self):
        self.assertChanges(lambda: os.mkdir(os.path.join(self.site, "workflow")), self.site)

    def test_a_missing_sys_path_directory_appears(self):
        self.assertChanges(lambda: os.makedirs(self.user_site))

    def test_a_directory_a_pth_names_appears(self):
        self.assertChanges(lambda: os.mkdir(self.elsewhere))

    def test_pyvenv_cfg_edited_to_the_same_size_and_mtime(self):
        self.assertChanges(lambda: self.write(self.cfg, "home = /usr/bin\ninclude-system-site-packages = fals\n"),
                           self.cfg)

    def test_the_interpreter_resolves_elsewhere(self):
        self.write(self.path("python3.11"), "binary")
        self.write(self.path("python3.12"), "binary")
        os.symlink("python3.11", self.path("python"))
        self.assertChanges(lambda: (os.unlink(self.path("python")), os.symlink("python3.12", self.path("python"))))

    def test_a_variable_that_moves_the_user_site(self):
        self.assertChanges(lambda: self.env.update(HOME="/home/bob"))
        self.assertChanges(lambda: self.env.update(PYTHONUSERBASE="/opt/user"))

    def test_a_variable_that_shapes_no_sys_path_is_left_out(self):
        before = self.state()
        self.env["SSH_CONNECTION"] = "10.0.0.1 50022 10.0.0.2 22"
        self.assertEqual(self.state(), before)

    def test_an_edit_inside_an_installed_package_is_left_out(self):
        os.mkdir(os.path.join(self.site, "pkg"))
        module = os.path.join(self.site, "pkg", "__init__.py")
        self.write(module, "X = 1\n")
        before = self.state()
        self.write(module, "X = 2\n")
        self.assertEqual(self.state(), before)

    def test_an_init_added_inside_a_namespace_directory_of_a_name_asked(self):
        os.mkdir(os.path.join(self.site, "nsp"))
        self.write(os.path.join(self.site, "nsp", "other.py"), "")

        def state():
            return fingerprint(import_state([self.site], [self.cfg]) + package_state([self.site], ["nsp", "wf"]))

        before, listing = state(), fingerprint(import_state([self.site], [self.cfg]))
        self.write(os.path.join(self.site, "nsp", "__init__.py"), "")
        # site-packages' listing and mtime are as they were: only the name's own directory tells.
        self.assertEqual(fingerprint(import_state([self.site], [self.cfg])), listing)
        self.assertNotEqual(state(), before)

    def test_path_lines_of_a_pth_are_those_site_adds(self):
        self.assertEqual(pth_path_lines("# c\n\nimport sys; sys.path.insert(0, 'x')\nimport\tos\n../old  \n"),
                         ["../old"])


if __name__ == "__main__":
    unittest.main()

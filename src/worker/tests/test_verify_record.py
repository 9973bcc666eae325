import os
import subprocess
import sys
import unittest

from sync_cluster_agent.release_store import ReleaseStore
from sync_cluster_agent.venv_doctor import VenvDoctor
from sync_cluster_agent.verify_record import VerifyRecord

from .helpers import TempDirTest


class VerifyRecordTest(TempDirTest):
    """verify answers from the record of the last full verification while nothing that decides a
    new interpreter's imports changed, and starts one otherwise (a real venv of this python)."""

    def setUp(self):
        super(VerifyRecordTest, self).setUp()
        self.venv = self.path("venv")
        subprocess.check_call([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", self.venv])
        self.site = subprocess.check_output(
            [os.path.join(self.venv, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            universal_newlines=True).strip()
        self.doctor = VenvDoctor(self.venv, ReleaseStore(self.path("deploy"), "proj", 3))
        os.makedirs(self.doctor.store.project_dir)
        self.started = 0
        probe = self.doctor.fresh_origins

        def counted(*args):
            self.started += 1
            return probe(*args)
        self.doctor.fresh_origins = counted

    def verify(self):
        before = self.started
        answer = self.doctor.verify({"topLevel": ["json", "workflow"]})
        self.assertEqual(answer["fromRecord"], self.started == before, answer)
        return answer

    def test_unchanged_is_answered_from_the_record_without_an_interpreter(self):
        first = self.verify()
        self.assertFalse(first["fromRecord"])
        again = self.verify()
        self.assertTrue(again["fromRecord"])
        self.assertEqual(again["origins"], first["origins"])

    def test_a_pth_that_puts_an_old_copy_first_is_seen(self):
        self.verify()
        old = self.path("old")
        os.makedirs(os.path.join(old, "workflow"))
        open(os.path.join(old, "workflow", "__init__.py"), "w").close()
        with open(os.path.join(self.site, "zz-old.pth"), "w") as f:
            f.write("import sys; sys.path.insert(0, %r)\n" % old)
        answer = self.verify()
        self.assertFalse(answer["fromRecord"])
        self.assertTrue(answer["origins"]["workflow"]["origin"].startswith(old))
        self.assertTrue(self.verify()["fromRecord"])

    def test_a_user_site_that_appears_is_seen(self):
        home = self.path("home")
        os.makedirs(home)
        saved = os.environ.get("HOME")
        self.addCleanup(lambda: os.environ.__setitem__("HOME", saved) if saved else os.environ.pop("HOME"))
        os.environ["HOME"] = home
        self.verify()
        self.assertTrue(self.verify()["fromRecord"])
        user_site = subprocess.check_output(
            [os.path.join(self.venv, "bin", "python"), "-c", "import site; print(site.getusersitepackages())"],
            universal_newlines=True, env={"HOME": home}).strip()
        self.assertTrue(user_site.startswith(home))
        os.makedirs(os.path.join(user_site, "workflow"))
        answer = self.verify()
        self.assertFalse(answer["fromRecord"])
        self.assertTrue(answer["origins"]["workflow"]["origin"].startswith(user_site))

    def test_other_names_asked_are_a_full_verification(self):
        self.verify()
        answer = self.doctor.verify({"topLevel": ["json"]})
        self.assertFalse(answer["fromRecord"])

    def test_a_change_while_the_interpreter_runs_is_not_recorded(self):
        self.verify()
        probe = self.doctor.fresh_origins

        def changing(*args):
            answer = probe(*args)
            os.mkdir(os.path.join(self.site, "installed-meanwhile-%d" % self.started))
            return answer
        self.doctor.fresh_origins = changing
        before = self.started
        self.doctor.verify({"topLevel": ["json"]})
        self.assertEqual(self.started - before, 2)  # asked again, and the state moved again
        self.doctor.fresh_origins = probe
        self.assertFalse(self.doctor.verify({"topLevel": ["json"]})["fromRecord"])

    def test_an_interpreter_that_cannot_answer_is_not_recorded(self):
        self.doctor.fresh_origins = lambda *args: {"error": "python3: cannot start"}
        self.doctor.verify({"topLevel": ["json"]})
        self.assertIsNone(VerifyRecord(self.doctor.store.project_dir).read())

    def release(self, rid, files, trees=()):
        """A release of `files` (path -> text) on the node, its directories named in `trees` made
        links to a shared tree as a push makes them; and the venv's .pth that puts it on sys.path."""
        store = self.doctor.store
        for path, text in files.items():
            top = path.split("/")[0]
            base = os.path.join(store.project_dir, "trees", rid + "-" + top) if top in trees else \
                os.path.join(store.releases_dir, rid, top)
            full = os.path.join(base, *path.split("/")[1:]) if "/" in path else base
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        for top in trees:
            os.makedirs(os.path.join(store.releases_dir, rid), exist_ok=True)
            os.symlink(os.path.join("..", "..", "trees", rid + "-" + top), os.path.join(store.releases_dir, rid, top))
        with open(os.path.join(self.site, "sync-cluster-proj.pth"), "w") as f:
            f.write(self.doctor.pth_content())
        return rid

    def verify_release(self, rid, names=("json", "workflow", "helpers")):
        before = self.started
        answer = self.doctor.verify({"topLevel": list(names), "release": rid})
        self.assertEqual(answer["fromRecord"], self.started == before, answer)
        return answer

    def full_answer(self, rid, names=("json", "workflow", "helpers")):
        """What a full verification says (the record removed first), without its own flags."""
        os.unlink(VerifyRecord(self.doctor.store.project_dir).path)
        answer = self.verify_release(rid, names)
        self.assertFalse(answer["fromRecord"])
        return answer["origins"]

    def test_a_new_release_laid_out_the_same_is_answered_from_the_record_with_its_own_paths(self):
        first = self.release("aaaaaaaa", {"workflow/__init__.py": "", "workflow/a.py": "x = 1",
                                          "helpers.py": ""}, trees=["workflow"])
        answer = self.verify_release(first)
        self.assertFalse(answer["fromRecord"])
        self.assertIn("/releases/aaaaaaaa/workflow/", answer["origins"]["workflow"]["origin"])
        second = self.release("bbbbbbbb", {"workflow/__init__.py": "import os", "workflow/b.py": "",
                                           "helpers.py": "y = 2", "data.txt": ""}, trees=["workflow"])
        moved = self.verify_release(second)
        self.assertTrue(moved["fromRecord"])
        self.assertEqual(moved["origins"], self.full_answer(second))
        self.assertTrue(moved["origins"]["workflow"]["real"].endswith("/trees/bbbbbbbb-workflow/__init__.py"))

    def test_a_new_release_laid_out_otherwise_is_verified_in_full(self):
        layouts = [
            {"workflow.py": "", "helpers.py": ""},  # a package became a module
            {"workflow/a.py": "", "helpers.py": ""},  # a package became a namespace directory
            {"workflow/__init__.py": "", "workflow.py": "", "helpers.py": ""},  # a module beside the package
            {"workflow/__init__.py": "", "helpers.cpython-311-x86_64-linux-gnu.so": ""},  # an extension
            {"workflow/__init__.py": ""},  # a name gone
            {"workflow/__init__.pyc": "", "helpers.py": ""},  # another __init__ file
            {".roots/0/workflow/__init__.py": "", ".roots/0/helpers.py": ""},  # the same names under a root
        ]
        rid = self.release("aaaaaaaa", {"workflow/__init__.py": "", "helpers.py": ""})
        self.verify_release(rid)
        for i, files in enumerate(layouts):
            with self.subTest(files=files):
                rid = self.release("%08x" % (0xc0000000 + i), files)
                self.assertFalse(self.verify_release(rid)["fromRecord"])
                self.release("aaaaaaaa", {})
                self.verify_release("aaaaaaaa")

    def test_a_release_that_is_not_on_the_node_is_verified_in_full(self):
        rid = self.release("aaaaaaaa", {"workflow/__init__.py": "", "helpers.py": ""})
        self.verify_release(rid)
        answer = self.verify_release("dddddddd")
        self.assertFalse(answer["fromRecord"])

    def test_a_new_release_shadowed_by_an_installed_copy_keeps_the_shadow(self):
        os.makedirs(os.path.join(self.site, "helpers"))
        open(os.path.join(self.site, "helpers", "__init__.py"), "w").close()
        self.verify_release(self.release("aaaaaaaa", {"workflow/__init__.py": "", "helpers/a.py": ""}))
        second = self.release("bbbbbbbb", {"workflow/__init__.py": "", "helpers/b.py": ""})
        moved = self.verify_release(second)
        self.assertTrue(moved["fromRecord"])
        self.assertTrue(moved["origins"]["helpers"]["origin"].startswith(self.site))
        self.assertEqual(moved["origins"], self.full_answer(second))

    def test_each_host_keeps_its_own_record(self):
        self.assertNotEqual(VerifyRecord("/d/p", "node1").path, VerifyRecord("/d/p", "node2").path)
        self.assertEqual(os.path.dirname(VerifyRecord("/d/p", "../x").path), "/d/p/verified")


if __name__ == "__main__":
    unittest.main()

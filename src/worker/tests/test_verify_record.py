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

    def test_each_host_keeps_its_own_record(self):
        self.assertNotEqual(VerifyRecord("/d/p", "node1").path, VerifyRecord("/d/p", "node2").path)
        self.assertEqual(os.path.dirname(VerifyRecord("/d/p", "../x").path), "/d/p/verified")


if __name__ == "__main__":
    unittest.main()

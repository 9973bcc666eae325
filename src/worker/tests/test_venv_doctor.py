import ast
import os
import stat
import unittest

from sync_cluster_agent.release_store import ReleaseStore
from sync_cluster_agent.venv_doctor import TOIL_WORKER, TOIL_WORKER_MARK, VenvDoctor

from .helpers import TempDirTest


class VenvDoctorTest(TempDirTest):
    def setUp(self):
        super(VenvDoctorTest, self).setUp()
        self.venv = self.path("venv")
        os.makedirs(os.path.join(self.venv, "bin"))
        self.doctor = VenvDoctor(self.venv, ReleaseStore(self.path("deploy"), "proj", 3))

    def write(self, path, text, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def test_reads_include_system_site_packages_with_its_line(self):
        cfg = os.path.join(self.venv, "pyvenv.cfg")
        self.assertEqual(self.doctor.pyvenv_cfg(), (cfg, None, None))
        self.write(cfg, "home = /usr/bin\nInclude-System-Site-Packages = False\n")
        self.assertEqual(self.doctor.pyvenv_cfg(), (cfg, 2, "false"))

    def test_fix_turns_on_system_site_packages_and_says_so(self):
        cfg = os.path.join(self.venv, "pyvenv.cfg")
        self.write(cfg, "home = /usr/bin\ninclude-system-site-packages = false\n")
        self.write(os.path.join(self.venv, "bin", "python"), "#!/bin/sh\n", 0o755)
        done = self.doctor.fix()["done"]
        self.assertIn("line 2", done[0])
        self.assertEqual(self.doctor.pyvenv_cfg()[2], "true")

    def test_the_pth_names_its_project_directory_on_its_first_line(self):
        first = self.doctor.pth_content().split("\n", 1)[0]
        served = ast.literal_eval(first[len("# sync-cluster project "):])
        self.assertEqual(served, self.doctor.store.project_dir)

    def test_toil_worker_is_found_on_the_path_with_its_interpreter(self):
        bin_dir = self.path("bin")
        os.makedirs(bin_dir)
        self.write(os.path.join(bin_dir, "_toil_worker"), TOIL_WORKER % ("/venv/bin/python", TOIL_WORKER_MARK),
                   stat.S_IRWXU)
        found = self.doctor.probe_toil_worker("_toil_worker", "/nonexistent:" + bin_dir, [])
        self.assertEqual(found["found"], os.path.join(bin_dir, "_toil_worker"))
        self.assertTrue(found["ours"])
        self.assertEqual(found["interpreter"], "/venv/bin/python")

    def test_a_toil_worker_without_a_shebang_is_reported(self):
        self.write(os.path.join(self.venv, "bin", "_toil_worker"), "print(1)\n", 0o755)
        found = self.doctor.probe_toil_worker(os.path.join(self.venv, "bin", "_toil_worker"), "", [])
        self.assertIn("does not start with #!", found["error"])

    def test_facts_for_a_node_without_a_venv_python(self):
        facts = self.doctor.facts({"modules": [], "deep": False})
        self.assertIsNone(facts["venvPython"])
        self.assertFalse(facts["venvIsVenv"])
        self.assertEqual(facts["deploy"]["existing"], self.dir)
        self.assertTrue(facts["deploy"]["writable"])


if __name__ == "__main__":
    unittest.main()

import importlib.util
import json
import subprocess
import sys
import unittest

from sync_cluster_agent import probe_imports, probe_origins
from sync_cluster_agent.sources import PROBE_IMPORTS, PROBE_ORIGINS


class ProbeImportsTest(unittest.TestCase):
    def test_finds_a_module_and_reports_a_missing_one(self):
        out = probe_imports.probe({"deep": False, "modules": [{"module": "json"}, {"module": "no_such_mod_xyz"}]})
        self.assertTrue(out["modules"]["json"]["found"])
        self.assertFalse(out["modules"]["no_such_mod_xyz"]["found"])
        self.assertIn("toil", out)

    def test_runs_as_a_program_given_its_source(self):
        args = json.dumps({"deep": False, "modules": [{"module": "os"}]})
        out = subprocess.check_output([sys.executable, "-c", PROBE_IMPORTS, args], cwd="/")
        self.assertTrue(json.loads(out.decode())["modules"]["os"]["found"])


class ProbeOriginsTest(unittest.TestCase):
    def test_the_origin_of_each_name_or_none(self):
        out = probe_origins.origins_of(["json", "no_such_mod_xyz"], importlib.util.find_spec)
        self.assertTrue(out["json"]["origin"].endswith("__init__.py"))
        self.assertIsNone(out["no_such_mod_xyz"])

    def test_runs_as_a_program_given_its_source(self):
        out = subprocess.check_output([sys.executable, "-c", PROBE_ORIGINS, json.dumps(["json"])], cwd="/")
        self.assertEqual(json.loads(out.decode())["executable"], sys.executable)


if __name__ == "__main__":
    unittest.main()

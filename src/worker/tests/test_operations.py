import base64
import os
import unittest

from sync_cluster_agent.framing import AGENT_VERSION, Refused
from sync_cluster_agent.operations import Agent
from sync_cluster_agent.release_files import release_id_of

from .helpers import TempDirTest, archive_of, manifest_of

FILES = {"main.py": "M = 1\n", "pkg/__init__.py": ""}


class AgentTest(TempDirTest):
    def setUp(self):
        super(AgentTest, self).setUp()
        self.agent = Agent()
        self.addCleanup(self.agent.reset)
        self.hello = self.agent.op_hello({"deployDir": self.path("deploy"), "project": "proj",
                                          "venv": self.path("venv"), "keep": 3}, None)

    def push(self, files):
        rows = manifest_of(files)
        rid = release_id_of([tuple(r) for r in rows])
        ready = self.agent.op_prepare({"release": rid, "base": None, "upsert": rows, "lockTimeout": 0}, None)
        self.assertEqual(ready["status"], "ready")
        published = self.agent.op_upload({}, archive_of(files))
        self.assertEqual(published["status"], "published")
        return rid

    def test_hello_on_an_empty_deploy_directory(self):
        self.assertEqual(self.hello["agent"], AGENT_VERSION)
        self.assertIsNone(self.hello["current"])
        self.assertEqual(self.hello["releases"], [])

    def test_hello_refuses_another_protocol(self):
        with self.assertRaises(Refused) as caught:
            self.agent.op_hello({"protocol": AGENT_VERSION + 1}, None)
        self.assertEqual(caught.exception.code, "protocol")

    def test_a_push_then_the_same_release_again_switches_without_an_upload(self):
        rid = self.push(FILES)
        self.assertEqual(self.agent.store.current(), rid)
        again = self.agent.op_prepare({"release": rid, "lockTimeout": 0}, None)
        self.assertEqual(again, {"status": "switched", "release": rid})

    def test_a_manifest_that_does_not_match_the_release_is_refused(self):
        with self.assertRaises(Refused) as caught:
            self.agent.op_prepare({"release": "0" * 24, "upsert": manifest_of(FILES), "lockTimeout": 0}, None)
        self.assertEqual(caught.exception.code, "bad-manifest")

    def test_export_sends_the_manifest_and_the_contents(self):
        rid = self.push(FILES)
        self.assertEqual([f[0] for f in self.agent.op_export({"release": rid}, None)["files"]],
                         ["main.py", "pkg/__init__.py"])
        contents = self.agent.op_export({"release": rid, "paths": ["main.py"]}, None)["contents"]
        self.assertEqual(base64.b64decode(contents[0][1]), b"M = 1\n")

    def test_activate_switches_back_and_refuses_a_release_the_node_lacks(self):
        first = self.push(FILES)
        self.push(dict(FILES, **{"main.py": "M = 2\n"}))
        self.assertEqual(self.agent.op_activate({"release": first, "lockTimeout": 0}, None)["status"], "switched")
        self.assertEqual(os.readlink(self.path("deploy", "proj", "current")), "releases/" + first)
        with self.assertRaises(Refused) as caught:
            self.agent.op_activate({"release": "f" * 24, "lockTimeout": 0}, None)
        self.assertEqual(caught.exception.code, "no-release")


if __name__ == "__main__":
    unittest.main()

import os
import re
import unittest

from sync_cluster_agent.protocol import DECLARATION, ERROR_CODES, request_problem, type_problem

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sync_cluster_agent")


def codes_in_source():
    """Every error code a module of the agent can answer with."""
    found = set()
    for name in os.listdir(PACKAGE):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGE, name)) as f:
                text = f.read()
            found |= set(re.findall(r'Refused\(\s*"([a-z-]+)"', text))
            found |= set(re.findall(r'"code": "([a-z-]+)"', text))
            for chosen in re.findall(r'code = "([a-z-]+)" if .* else "([a-z-]+)"', text):
                found |= set(chosen)
    return found


class DeclarationTest(unittest.TestCase):
    def test_the_error_codes_are_those_the_agent_answers_with(self):
        self.assertEqual(codes_in_source(), ERROR_CODES)

    def test_every_declared_op_has_its_operation(self):
        from sync_cluster_agent.operations import Agent
        ops = {name[3:] for name in dir(Agent) if name.startswith("op_")}
        self.assertEqual(ops, set(DECLARATION["ops"]))


class TypeTest(unittest.TestCase):
    def test_types_of_the_declaration(self):
        self.assertIsNone(type_problem(["list", "wireFile"], [["a.py", 1, 420, "x"]], "f"))
        self.assertEqual(type_problem(["list", "wireFile"], [["a.py", "1", 420, "x"]], "f"), "f[0][1] is a string, not integer")
        self.assertEqual(type_problem("integer", True, "n"), "n is true, not integer")
        self.assertIsNone(type_problem(["enum", False], False, "c"))
        self.assertIsNotNone(type_problem(["enum", False], 0, "c"))
        self.assertIsNone(type_problem(["or", "string", "null"], None, "s"))
        self.assertEqual(type_problem({"a": "string"}, {"a": "x", "b": 1}, "o"), "unknown field o.b")

    def test_a_payload_is_required_where_declared(self):
        self.assertEqual(request_problem({"op": "upload"}), "upload request without its payload")
        self.assertIsNone(request_problem({"op": "upload", "payload": 10}))


if __name__ == "__main__":
    unittest.main()

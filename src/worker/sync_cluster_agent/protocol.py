"""The worker protocol's declaration (src/core/protocol/worker-protocol.json), which the leader's
TypeScript is generated from too: every request is checked against it before its operation runs,
so the agent serves no field the declaration does not name."""

import json

from .sources import PROTOCOL

DECLARATION = json.loads(PROTOCOL)
# The protocol's version: a leader that says it speaks another one is refused at hello.
AGENT_VERSION = DECLARATION["version"]
ERROR_CODES = frozenset(DECLARATION["errors"])
# Fields of the frame itself rather than of the operation.
FRAME_FIELDS = ("op", "payload")


def describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def type_problem(kind, value, where):
    """What is wrong with `value` as a `kind` of the declaration (see its "about"), or None."""
    if isinstance(kind, str):
        named = DECLARATION["types"].get(kind)
        if named is not None:
            return type_problem(named, value, where)
        ok = {
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
            "any": lambda v: True,
            "object": lambda v: isinstance(v, dict),
        }[kind](value)
        return None if ok else "%s is %s, not %s" % (where, describe(value), kind)
    if isinstance(kind, dict):
        return fields_problem(kind, value, where)
    head, rest = kind[0], kind[1:]
    if head == "or":
        problems = [type_problem(k, value, where) for k in rest]
        return None if None in problems else problems[-1]
    if head == "enum":
        return None if any(value is v or (value == v and type(value) is type(v)) for v in rest) else \
            "%s is %s, not one of %s" % (where, json.dumps(value), json.dumps(rest))
    if head == "list":
        if not isinstance(value, list):
            return "%s is %s, not a list" % (where, describe(value))
        return next((p for p in (type_problem(rest[0], v, "%s[%d]" % (where, i)) for i, v in enumerate(value)) if p),
                    None)
    if head == "tuple":
        if not isinstance(value, list) or len(value) != len(rest):
            return "%s is %s, not a list of %d" % (where, describe(value), len(rest))
        return next((p for p in (type_problem(k, v, "%s[%d]" % (where, i)) for i, (k, v) in
                                 enumerate(zip(rest, value))) if p), None)
    if head == "map":
        if not isinstance(value, dict):
            return "%s is %s, not an object" % (where, describe(value))
        return next((p for p in (type_problem(rest[0], v, "%s.%s" % (where, k)) for k, v in value.items()) if p), None)
    raise ValueError("the declaration has no type %r" % (head,))


def fields_problem(fields, value, where, ignore=()):
    """What is wrong with an object of declared fields: a missing, unknown or ill-typed one."""
    if not isinstance(value, dict):
        return "%s is %s, not an object" % (where, describe(value))
    known = set()
    for name, kind in fields.items():
        optional = name.endswith("?")
        name = name.rstrip("?")
        known.add(name)
        inner = "%s.%s" % (where, name) if where else name
        if name not in value:
            if not optional:
                return "missing field %s" % inner
            continue
        problem = type_problem(kind, value[name], inner)
        if problem:
            return problem
    unknown = sorted(k for k in value if k not in known and k not in ignore)
    if unknown:
        return "unknown field %s" % ("%s.%s" % (where, unknown[0]) if where else unknown[0])
    return None


def request_problem(req):
    """What makes `req` no request of the declaration, or None. An unknown op is one."""
    op = req.get("op")
    declared = DECLARATION["ops"].get(op) if isinstance(op, str) else None
    if declared is None:
        return "unknown operation %s" % json.dumps(op)
    if op == "hello" and req.get("protocol", AGENT_VERSION) != AGENT_VERSION:
        return None  # a leader of another version may send other fields: op_hello names both versions
    problem = fields_problem(declared["request"], req, "", FRAME_FIELDS)
    if problem:
        return "%s request: %s" % (op, problem)
    if declared.get("payload") and "payload" not in req:
        return "%s request without its payload" % op
    return None

import io
import json
import struct
import unittest

from sync_cluster_agent.framing import AGENT_VERSION, BoundedReader, Lost, Refused, Server


def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def replies(raw):
    out, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack(">I", raw[at:at + 4])
        out.append(json.loads(raw[at + 4:at + 4 + n].decode()))
        at += 4 + n
    return out


class EchoAgent(object):
    """Stands in for the operations: records what it was asked and how the session ended."""

    def __init__(self):
        self.store = None
        self.resets = 0
        self.seen = []

    def reset(self):
        self.resets += 1

    def after_reply(self):
        pass

    def op_hello(self, req, payload):
        self.store = object()
        return {"agent": AGENT_VERSION}

    def op_upload(self, req, payload):
        self.seen.append(payload.read(2))  # leaves the rest of the payload unread
        return {"status": "published"}

    def op_prepare(self, req, payload):
        raise Refused("locked", "held")

    def op_check(self, req, payload):
        return {"deep": req["deep"]}


HELLO = {"op": "hello", "protocol": AGENT_VERSION, "deployDir": "/d", "project": "p", "venv": "/v", "keep": 3,
         "withManifest": False}
CHECK = {"op": "check", "modules": [], "deep": False}


def serve(data):
    agent = EchoAgent()
    out = io.BytesIO()
    Server(agent, io.BytesIO(data), out).serve()
    return agent, replies(out.getvalue())


class ServerTest(unittest.TestCase):
    def test_every_request_gets_one_reply_and_an_unread_payload_is_drained(self):
        agent, got = serve(frame(HELLO) + frame({"op": "upload", "payload": 5}) + b"abcde"
                           + frame({"op": "prepare", "release": "0" * 24, "lockTimeout": 1}))
        self.assertEqual([r["ok"] for r in got], [True, True, False])
        self.assertEqual(agent.seen, [b"ab"])
        self.assertEqual(got[2]["code"], "locked")

    def test_a_request_before_hello_is_refused(self):
        _, got = serve(frame(CHECK))
        self.assertEqual(got[0]["code"], "bad-request")
        self.assertIn("before hello", got[0]["message"])

    def test_requests_the_declaration_does_not_allow_are_answered(self):
        _, got = serve(frame(HELLO) + frame({"op": "dance"}) + frame({"op": "export"})
                       + frame(dict(CHECK, deep="yes")) + frame(dict(CHECK, extra=1)) + frame(CHECK))
        self.assertEqual([r.get("code") for r in got[1:]], ["bad-request"] * 4 + [None])
        self.assertEqual([r["message"] for r in got[1:5]], [
            'unknown operation "dance"',
            "export request: missing field release",
            "check request: deep is a string, not boolean",
            "check request: unknown field extra",
        ])

    def test_a_hello_of_another_version_reaches_the_operation_whatever_its_fields(self):
        agent, got = serve(frame({"op": "hello", "protocol": AGENT_VERSION + 1, "new": True}))
        self.assertTrue(got[0]["ok"], "EchoAgent answers any hello it gets")

    def test_a_frame_that_is_not_a_json_object_is_refused_and_the_next_one_served(self):
        bad = b"[1, 2]"
        _, got = serve(struct.pack(">I", len(bad)) + bad + frame(HELLO))
        self.assertEqual(got[0]["code"], "bad-frame")
        self.assertTrue(got[1]["ok"])

    def test_a_payload_size_not_to_be_believed_ends_the_session(self):
        agent, got = serve(frame(dict(HELLO, payload=-1)) + frame(HELLO))
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["code"], "bad-frame")
        self.assertGreaterEqual(agent.resets, 1)

    def test_read_frame_raises_lost_for_a_length_over_the_limit(self):
        server = Server(EchoAgent(), io.BytesIO(struct.pack(">I", Server.MAX_FRAME + 1)), io.BytesIO())
        with self.assertRaises(Lost):
            server.read_frame()


class BoundedReaderTest(unittest.TestCase):
    def test_reads_stop_at_the_payload_end(self):
        reader = BoundedReader(io.BytesIO(b"abcdef"), 4)
        self.assertEqual(reader.read(), b"abcd")
        self.assertEqual(reader.read(), b"")

    def test_a_stream_cut_short_raises_eof(self):
        reader = BoundedReader(io.BytesIO(b"ab"), 4)
        reader.read(2)
        with self.assertRaises(EOFError):
            reader.read(2)


if __name__ == "__main__":
    unittest.main()

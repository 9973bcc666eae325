"""The agent's framed protocol on stdin and stdout, and the errors a request can end in.

Frame: 4-byte big-endian length, then that many bytes of UTF-8 JSON. A request with
"payload": N is followed by N raw bytes (a tar archive). Every request gets one reply frame.
Before any frame the agent writes ANNOUNCE and AGENT_VERSION on a line of their own, so that the
leader can tell what the user's login shell printed from the frames that follow
(src/core/protocol/agent-announcement.ts).
"""

import errno
import json
import struct

from .protocol import AGENT_VERSION, request_problem
# Written before any frame, then the version and a newline (agent-announcement.ts, AGENT_MARKER).
ANNOUNCE = b"\x00\x1esync-cluster-agent/"
COPY_CHUNK = 1 << 20


class Refused(Exception):
    """A request the agent will not carry out; the message is for the user."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Lost(Exception):
    """A frame after which the stream cannot be followed (a length or payload size not to be believed)."""


class BoundedReader:
    """The payload of one request: reads stop at its end so the next frame stays intact."""

    def __init__(self, raw, size):
        self.raw = raw
        self.left = size

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        if n is None or n < 0 or n > self.left:
            n = self.left
        data = self.raw.read(n)
        if not data:
            raise EOFError
        self.left -= len(data)
        return data

    def drain(self):
        while self.left > 0:
            self.read(min(self.left, COPY_CHUNK))


class Server:
    """The framed protocol on stdin/stdout: one reply frame for every request frame, whatever
    happens in between. A request's payload is read to its end (by its handler, or drained here),
    so a refused or unknown request leaves the stream at the next frame. Only a frame whose length
    or payload size cannot be believed ends the session: nothing after it can be found again."""

    MAX_FRAME = 256 * 1024 * 1024

    def __init__(self, agent, inp, out, reply_lines=False):
        self.agent = agent
        self.inp = inp
        self.out = out
        # Through ClusterShell's tree a node's output travels line by line: each reply is then one
        # line of JSON (which never holds a newline) instead of a length-prefixed frame.
        self.reply_lines = reply_lines

    def read_exact(self, n):
        chunks = []
        while n > 0:
            chunk = self.inp.read(min(n, COPY_CHUNK))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read_frame(self):
        """The next request as (dict or None for the end of input, payload reader or None). Raises
        Lost when the stream cannot be followed past this frame (a length or payload size not to
        be believed), Refused("bad-frame") when only this frame is unreadable (not a JSON object)."""
        header = self.inp.read(4)
        if not header:
            return None, None
        if len(header) < 4:
            header += self.read_exact(4 - len(header))
        (length,) = struct.unpack(">I", header)
        if length > self.MAX_FRAME:
            raise Lost("frame length %d is over the limit of %d bytes" % (length, self.MAX_FRAME))
        body = self.read_exact(length)
        try:
            req = json.loads(body.decode("utf-8", "surrogatepass"))
        except ValueError as e:  # UnicodeDecodeError too
            raise Refused("bad-frame", "the request is not JSON: %s" % e)
        if not isinstance(req, dict):
            raise Refused("bad-frame", "the request is not a JSON object")
        payload = None
        if "payload" in req:
            size = req["payload"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise Lost("payload size %r is not a byte count" % (size,))
            payload = BoundedReader(self.inp, size)
        return req, payload

    def reply(self, obj):
        data = json.dumps(obj, ensure_ascii=True).encode("ascii")
        self.out.write(data + b"\n" if self.reply_lines else struct.pack(">I", len(data)) + data)
        self.out.flush()

    def handle(self, req, payload):
        problem = request_problem(req)
        if problem:
            raise Refused("bad-request", problem)
        op = req["op"]
        handler = getattr(self.agent, "op_" + op)
        if op != "hello" and self.agent.store is None:
            raise Refused("bad-request", "%s before hello: the first request of a session must be a hello that succeeded" % op)
        result = handler(req, payload)
        result["ok"] = True
        return result

    def serve(self):
        try:
            while True:
                payload = None
                try:
                    req, payload = self.read_frame()
                    if req is None:
                        return
                    result = self.handle(req, payload)
                except Refused as e:
                    result = {"ok": False, "code": e.code, "message": str(e)}
                except Lost as e:
                    self.reply({"ok": False, "code": "bad-frame", "message": "%s; the stream cannot be followed, "
                                "the agent stops" % e})
                    return
                except EOFError:
                    return
                except OSError as e:
                    code = "no-space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "os-error"
                    result = {"ok": False, "code": code, "message": "%s: %s" % (e.strerror, e.filename or "")}
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    # A request missing a field or holding one of the wrong type: answered, not fatal.
                    what = "missing field %s" % e if isinstance(e, KeyError) else "%s: %s" % (type(e).__name__, e)
                    result = {"ok": False, "code": "bad-request", "message": "malformed request: %s" % what}
                except Exception as e:
                    result = {"ok": False, "code": "internal", "message": "the agent failed: %s: %s" % (type(e).__name__, e)}
                if not result.get("ok"):
                    self.agent.reset()
                if payload is not None:
                    payload.drain()  # whatever the handler left of the payload: the next frame follows it
                self.reply(result)
                try:
                    self.agent.after_reply()
                except Exception:
                    pass  # best effort: whatever is left is collected after the next switch
        except (EOFError, BrokenPipeError):
            return
        finally:
            self.agent.reset()

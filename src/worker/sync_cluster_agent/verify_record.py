"""The record of a node's last full verification (VenvDoctor.verify): what was asked (the release,
the top-level names), what the fresh interpreter read at its start (its sys.path directories and
customize files), the fingerprint of those, and its answer. While the same question meets the same
fingerprint, the answer is the record's, and no interpreter is started.

    DEPLOY/PROJECT/verified/HOST.json

One file per host, since nodes may share one deploy directory (a home directory on NFS) and each
reads its own sys.path. The record is a saving only: one that is missing, unreadable or cannot be
written makes the next verification a full one.
"""

import hashlib
import json
import os
import re

from .durable import replace_file

VERIFIED = "verified"
SAFE_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class VerifyRecord:
    """The last full verification on this host, kept in the project directory."""

    def __init__(self, project_dir, host=None):
        host = host if host is not None else os.uname()[1]
        name = host if SAFE_HOST.fullmatch(host) else hashlib.sha256(host.encode("utf-8", "replace")).hexdigest()
        self.path = os.path.join(project_dir, VERIFIED, name + ".json")

    def read(self):
        """The record as a dict, or None."""
        try:
            with open(self.path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def write(self, record):
        """Replaces the record whole or not at all (a temporary name, fsync, rename)."""
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            replace_file(self.path, json.dumps(record, sort_keys=True))
        except OSError:
            pass  # a node that cannot keep a record verifies in full every time

"""Compiles modules with the leader's interpreter without running or writing anything.

Run by sync-cluster as `PYTHON -E -c <this file>` from this file's own directory. Each line on
stdin is a JSON list of paths; each answer on stdout is one JSON line: a list of
[path, line, message] for the modules that do not compile (a syntax error would make every
worker's job fail at import). It stays up, so watch mode pays for one interpreter start.
"""

import json
import sys
import warnings

# A SyntaxWarning (an invalid escape) is no reason to hold a release, and must not reach stderr.
warnings.simplefilter("ignore")

for request in sys.stdin:
    errors = []
    for path in json.loads(request):
        try:
            with open(path, "rb") as f:
                source = f.read()
            compile(source, path, "exec", dont_inherit=True)
        except SyntaxError as e:  # IndentationError and TabError too
            errors.append([path, e.lineno or 0, e.msg or str(e)])
        except OSError:
            continue  # gone since it was listed: the next resolution notices
        except Exception as e:  # null bytes (ValueError), nesting too deep (RecursionError, MemoryError)
            errors.append([path, 0, "%s: %s" % (type(e).__name__, e)])
    sys.stdout.write(json.dumps(errors) + "\n")
    sys.stdout.flush()

"""Where a fresh interpreter finds each top-level name, as a job started by a batch system would,
and what it read at its start to decide that (its sys.path, the site directories that were
missing, its sitecustomize and usercustomize), for the fingerprint of a verification
(import_fingerprint.py).

Run as `python -c SOURCE NAMES` (VenvDoctor.probe_origins), from "/" with the environment a job gets.
"""

import importlib.util, json, os, sys


def origins_of(names, find):
    origins = {}
    for name in names:
        try:
            spec = find(name)
        except Exception as e:
            origins[name] = {"error": "%s: %s" % (type(e).__name__, e)}
            continue
        if spec is None:
            origins[name] = None
        else:
            where = spec.origin if spec.origin not in (None, "namespace") else next(iter(spec.submodule_search_locations or []), None)
            origins[name] = {"origin": where, "real": os.path.realpath(where) if where else None}
    return origins


def read_at_start():
    """sys.path ("" is the start directory), then the site directories site.py skipped because
    they did not exist (the user site among them): one appearing changes sys.path."""
    import site
    dirs = [os.path.abspath(p) for p in sys.path]
    candidates = []
    try:
        candidates.extend(site.getsitepackages())
        candidates.append(site.getusersitepackages())
    except Exception:  # an old virtualenv's own site.py has neither
        pass
    dirs.extend(d for d in candidates if d not in dirs)
    customize = [getattr(sys.modules.get(n), "__file__", None) for n in ("sitecustomize", "usercustomize")]
    return {"dirs": dirs, "files": [f for f in customize if f]}


if __name__ == "__main__":
    names = json.loads(sys.argv[1])
    seen = read_at_start()
    print(json.dumps({"executable": sys.executable, "origins": origins_of(names, importlib.util.find_spec), "seen": seen}))

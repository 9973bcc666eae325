"""Where a fresh interpreter finds each top-level name, as a job started by a batch system would.

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


if __name__ == "__main__":
    print(json.dumps({"executable": sys.executable, "origins": origins_of(json.loads(sys.argv[1]), importlib.util.find_spec)}))

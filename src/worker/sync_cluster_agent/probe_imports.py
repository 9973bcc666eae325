"""Asks a fresh interpreter (the venv's python) where toil and the workflow's imports come from.

Run as `python -c SOURCE ARGS` (VenvDoctor.probe_imports), or in the agent's own interpreter when
nothing it read at start has changed; it needs nothing but the standard library.
"""

import importlib, importlib.util, json, os, sys, sysconfig


def probe(args):
    try:
        import importlib.metadata as md
    except ImportError:
        md = None

    def version_of(dist):
        if not dist or md is None:
            return None
        try:
            return md.version(dist)
        except Exception:
            return None

    out = {"python": "%d.%d.%d" % sys.version_info[:3], "venvSite": sysconfig.get_paths()["purelib"], "modules": {}}
    toil = {"found": False}
    try:
        if args["deep"]:
            m = importlib.import_module("toil")
            origin = getattr(m, "__file__", None)
        else:
            spec = importlib.util.find_spec("toil")
            origin = spec.origin if spec else None
        if origin:
            toil = {"found": True, "origin": os.path.realpath(origin), "version": version_of("toil")}
    except Exception as e:
        toil = {"found": False, "error": "%s: %s" % (type(e).__name__, e)}
    out["toil"] = toil
    for item in args["modules"]:
        name = item["module"]
        try:
            spec = importlib.util.find_spec(name)
            out["modules"][name] = {"found": spec is not None,
                                    "origin": os.path.realpath(spec.origin) if spec and spec.origin else None,
                                    "version": version_of(item.get("dist"))}
        except Exception as e:
            out["modules"][name] = {"found": False, "error": "%s: %s" % (type(e).__name__, e)}
    return out


if __name__ == "__main__":
    print(json.dumps(probe(json.loads(sys.argv[1]))))

"""Facts about the leader's interpreter that only the interpreter knows.

Run by sync-cluster as `PYTHON -E -c <this file> START_DIR PYTHONPATH_JSON` from this file's own
directory, so neither PYTHONPATH nor a project module named like a standard one (a `json.py` in the
project root) can change what the probe itself imports. It
prints one JSON document on stdout and imports nothing of the user's project. The rules that
decide the module set live in TypeScript; this only reports what is there.
"""

import json
import os
import re
import sys
import sysconfig
import zipfile

try:
    import importlib.metadata as metadata
except ImportError:  # Python < 3.8 has no importlib.metadata; the rules then see no distributions
    metadata = None

EXTENSION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)*\.(so|pyd)$")
SOURCE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.(py|pyc|pyw)$")


def real(path):
    try:
        return os.path.realpath(path)
    except OSError:
        return path


def list_top_level(entry):
    """Importable top-level names in one sys.path directory: name -> kind."""
    names = {}
    try:
        with os.scandir(entry) as it:
            for item in it:
                name = item.name
                try:
                    is_dir = item.is_dir()
                except OSError:
                    continue
                if is_dir:
                    if not name.isidentifier():
                        continue
                    if os.path.isfile(os.path.join(item.path, "__init__.py")):
                        names[name] = "package"
                    else:
                        names.setdefault(name, "namespace")
                    continue
                m = SOURCE_RE.match(name)
                if m and m.group(2) != "pyc":
                    if names.get(m.group(1)) != "package":
                        names[m.group(1)] = "module"
                    continue
                m = EXTENSION_RE.match(name)
                if m and names.get(m.group(1)) != "package":
                    names[m.group(1)] = "extension"
    except OSError:
        pass
    return names


def holds_dist_info(entry):
    """Whether a directory holds installed distributions' metadata (`pip install --target DIR`)."""
    try:
        return any(n.endswith(".dist-info") for n in os.listdir(entry))
    except OSError:
        return False


def site_dirs():
    own = None
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        own = real(sysconfig.get_paths()["purelib"])
    system = []
    try:
        import site

        for d in site.getsitepackages():
            if real(d) != own:
                system.append(real(d))
        user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    except Exception:
        user = None
    return own, system, (real(user) if user else None)


def stdlib_dirs():
    paths = sysconfig.get_paths()
    dirs = {real(paths["stdlib"]), real(paths["platstdlib"])}
    # In a venv platstdlib points into the venv; lib-dynload sits beside the real stdlib.
    for base in (paths["stdlib"], paths["platstdlib"]):
        dirs.add(real(os.path.join(base, "lib-dynload")))
    return dirs


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def finder_mapping(path):
    """Top-level names of a PEP 660 `__editable___*_finder.py` (setuptools writes MAPPING = {...})."""
    import ast

    text = read_text(path) or ""
    m = re.search(r"^MAPPING\s*(?::[^=]*)?=\s*(\{.*?\})\s*$", text, re.M | re.S)
    if not m:
        return {}
    try:
        value = ast.literal_eval(m.group(1))
        return {str(k): str(v) for k, v in value.items()}
    except Exception:
        return {}


HEADER_RE = re.compile(r"^([\x21-\x39\x3b-\x7e]*):(.*)$")


def metadata_headers(dist):
    """Name and Version from the distribution's metadata, read up to the end of its headers.

    importlib's dist.metadata and dist.version parse the whole file (long description included)
    with the email package on every call: three times per distribution, two thirds of the probe's
    time. This reads the headers as that parser does: "Key: value" lines (value without its
    leading blanks, the first of a key winning) up to an empty line or one that is no header; the
    files are those importlib reads, in its order."""
    text = read_dist_text(dist, "METADATA") or read_dist_text(dist, "PKG-INFO") or read_dist_text(dist, "") or ""
    headers = {}
    last = None
    for number, line in enumerate(text.splitlines()):
        if line == "":
            break
        if line[0] in " \t":
            if last is not None:
                headers[last] += "\n" + line  # a folded line continues the header before it
            continue
        m = HEADER_RE.match(line)
        if not m:
            if number == 0 and line.startswith("From "):
                continue  # an mbox "From " line, which the parser skips
            break
        key = m.group(1).lower()
        last = None
        if key not in headers:
            headers[key] = m.group(2).lstrip(" \t")
            last = key
    name, version = headers.get("name"), headers.get("version")
    if "\n" in (name or "") + (version or ""):
        # Folded: importlib re-indents such values, differently across Python versions. No tool
        # writes one; the rare file gets importlib's own reading.
        return dist.metadata["Name"], dist.version
    return name, version


def describe_distribution(dist, site_dir, with_files):
    meta_path = getattr(dist, "_path", None)
    meta_dir = os.path.basename(str(meta_path)) if meta_path else None
    name, version = metadata_headers(dist)
    files = None
    try:
        listed = dist.files
    except Exception:
        listed = None
    if listed is not None:
        files = [str(f).replace(os.sep, "/") for f in listed]
    top_level = read_dist_text(dist, "top_level.txt")
    direct_url = read_dist_text(dist, "direct_url.json")
    editable = False
    source_url = None
    if direct_url:
        try:
            info = json.loads(direct_url)
            editable = bool(info.get("dir_info", {}).get("editable"))
            source_url = info.get("url")
        except ValueError:
            pass
    return {
        "name": name,
        "version": version,
        "metaDir": meta_dir,
        "siteDir": site_dir,
        "files": files if with_files else None,
        "hasFileList": files is not None,
        "compiledFiles": [f for f in (files or []) if f.endswith((".so", ".pyd")) or ".so." in f][:20],
        "topLevel": [t.strip() for t in (top_level or "").splitlines() if t.strip()],
        "fileTopLevel": sorted({top_level_of(f) for f in (files or []) if top_level_of(f)}),
        "editable": editable,
        "sourceUrl": source_url,
        "installer": (read_dist_text(dist, "INSTALLER") or "").strip() or None,
    }


def top_level_of(path):
    first = path.split("/", 1)[0]
    if first in ("..", "") or first.endswith((".dist-info", ".egg-info", ".data")) or first == "__pycache__":
        return None
    if "/" in path:
        return first if first.isidentifier() else None
    m = SOURCE_RE.match(first) or EXTENSION_RE.match(first)
    return m.group(1) if m else None


def read_dist_text(dist, name):
    try:
        return dist.read_text(name)
    except Exception:
        return None


def distributions(site_dir, with_files):
    if metadata is None or not os.path.isdir(site_dir):
        return []
    out = []
    seen = set()
    for dist in metadata.distributions(path=[site_dir]):
        try:
            d = describe_distribution(dist, site_dir, with_files)
        except Exception:
            continue
        key = (d["name"] or "").lower()
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    return out


def egg_info_top_level(directory):
    """top_level.txt of the project's .egg-info (egg-link source trees) or EGG-INFO (.egg installs)."""
    names = []
    if os.path.isfile(directory) and zipfile.is_zipfile(directory):
        # A zipped .egg (setup.py install): its metadata is inside the archive.
        try:
            with zipfile.ZipFile(directory) as z:
                text = z.read("EGG-INFO/top_level.txt").decode("utf-8", "replace")
            return sorted({line.strip() for line in text.splitlines() if line.strip()})
        except (KeyError, OSError, zipfile.BadZipFile):
            return names
    try:
        candidates = [os.path.join(directory, "EGG-INFO")] + [
            os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".egg-info")]
    except OSError:
        return names
    for info in candidates:
        text = read_text(os.path.join(info, "top_level.txt"))
        if text:
            names += [line.strip() for line in text.splitlines() if line.strip()]
    return sorted(set(names))


def editables_and_eggs(site_dir):
    """Editable (.egg-link, PEP 660) and .egg installs found in one site directory."""
    found = []
    try:
        names = sorted(os.listdir(site_dir))
    except OSError:
        return found
    for name in names:
        path = os.path.join(site_dir, name)
        if name.endswith(".egg-link"):
            first = ((read_text(path) or "").splitlines() or [""])[0].strip()
            found.append({"kind": "egg-link", "file": path, "paths": [real(first)] if first else [],
                          "topLevel": egg_info_top_level(first) if first else []})
        elif name.startswith("__editable__") and name.endswith("_finder.py"):
            mapping = finder_mapping(path)
            found.append({"kind": "editable-finder", "file": path, "paths": sorted({real(v) for v in mapping.values()}),
                          "topLevel": sorted(mapping)})
        elif name.startswith("__editable__") and name.endswith(".pth"):
            lines = [l.strip() for l in (read_text(path) or "").splitlines()]
            paths = [real(l) for l in lines if l and not l.startswith(("#", "import ", "import\t"))]
            found.append({"kind": "editable-pth", "file": path, "paths": paths, "topLevel": []})
        elif name.endswith(".egg"):
            found.append({"kind": "egg", "file": path, "paths": [real(path)], "topLevel": egg_info_top_level(path)})
    return found


def main():
    start_dir = real(sys.argv[1]) if len(sys.argv) > 1 else real(os.getcwd())
    pythonpath = json.loads(sys.argv[2]) if len(sys.argv) > 2 else []
    own_site, system_sites, user_site = site_dirs()
    stdlib = stdlib_dirs()

    # sys.path as `python -m` started in start_dir with this PYTHONPATH would see it: the start
    # directory, then PYTHONPATH, then the interpreter's own path (which -E left without PYTHONPATH).
    entries = [(start_dir, "start")]
    for p in pythonpath:
        if p:
            entries.append((real(os.path.join(start_dir, p)), "pythonpath"))
    for p in sys.path:
        if not p:
            continue
        rp = real(p)
        if rp in stdlib or rp.endswith(".zip"):
            kind = "stdlib"
        elif own_site and rp == own_site:
            kind = "venv-site"
        elif rp in system_sites:
            kind = "system-site"
        elif user_site and rp == user_site:
            kind = "user-site"
        elif rp.endswith(".egg"):
            kind = "egg"
        else:
            kind = "pth"  # added by a .pth file, e.g. an editable install's source tree
        entries.append((rp, kind))

    seen = set()
    path = []
    for entry, kind in entries:
        if entry in seen:
            continue
        seen.add(entry)
        item = {"path": entry, "kind": kind, "names": list_top_level(entry) if os.path.isdir(entry) else None}
        if kind == "pythonpath":
            item["distInfo"] = holds_dist_info(entry)
        path.append(item)

    dists = []
    installs = []
    if own_site:
        dists += distributions(own_site, with_files=True)
        installs += editables_and_eggs(own_site)
    for site_dir in system_sites + ([user_site] if user_site else []):
        dists += distributions(site_dir, with_files=False)
        installs += editables_and_eggs(site_dir)

    names = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    if not getattr(sys, "stdlib_module_names", None):
        for entry in path:
            if entry["kind"] == "stdlib" and entry["names"]:
                names.update(entry["names"])

    json.dump({
        "executable": sys.executable,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "prefix": sys.prefix,
        "basePrefix": getattr(sys, "base_prefix", sys.prefix),
        "venvSite": own_site,
        "systemSites": system_sites,
        "userSite": user_site,
        "startDir": start_dir,
        "path": path,
        "stdlibNames": sorted(names - {"__main__"}),
        "distributions": dists,
        "installs": installs,
    }, sys.stdout)


if __name__ == "__main__":  # run by sync-cluster with -c; a test reads its functions
    main()

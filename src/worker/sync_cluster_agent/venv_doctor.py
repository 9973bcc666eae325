"""The node's virtualenv as the release needs it: pyvenv.cfg, the release-selecting .pth,
Toil's `_toil_worker`; the facts `check` judges, what `check --fix` repairs, and where the venv's
python loads the workflow from (verify).

    VENV/lib/pythonX.Y/site-packages/sync-cluster-PROJECT.pth   runs the selector at every interpreter start
    VENV/bin/_toil_worker                 Toil's worker run by the venv's python (see TOIL_WORKER)
"""

import importlib
import importlib.util
import json
import os
import stat
import sys
import sysconfig

from .durable import replace_file
from .framing import Refused
from .import_fingerprint import fingerprint, import_state, package_state, release_layout
from .release_files import valid_release_id
from .release_store import PINS, RELEASE_ENV, RUNS, pth_comment_project, selector_pth_content
from .sources import PROBE_IMPORTS, PROBE_ORIGINS
from .start_state import START
from .verify_record import VerifyRecord

# Toil's grid batch systems start `_toil_worker` by name (or by its absolute path on the leader
# with TOIL_CHECK_ENV=True), looked up in the PATH the job gets. A venv made with
# --system-site-packages has none (Toil is not reinstalled there), so without this the job runs
# /usr/bin/_toil_worker under the system python, which never reads the venv's .pth.
TOIL_WORKER_MARK = "# Written by sync-cluster"
TOIL_WORKER = """#!%s
%s: Toil's worker entry point, run by this virtualenv's python so that jobs started by a
# batch system see the venv's packages and the release the venv's .pth selects. Toil itself stays
# the system's (--system-site-packages); this file holds no copy of it.
import sys

from toil.worker import main

if __name__ == "__main__":
    sys.exit(main())
"""


class VenvDoctor:
    """The node's virtualenv as the release needs it: pyvenv.cfg, the release-selecting .pth,
    Toil's `_toil_worker`; the facts `check` judges, what `check --fix` repairs, and where the
    venv's python loads the workflow from (verify)."""

    def __init__(self, venv, store):
        self.venv = venv
        self.store = store

    # ---- the .pth and Toil's worker entry point -----------------------------------------------
    def site_packages(self):
        """The venv's site-packages, if this agent runs under the venv's python."""
        if sys.prefix == getattr(sys, "base_prefix", sys.prefix):
            return None
        if os.path.realpath(sys.prefix) != os.path.realpath(self.venv):
            return None
        return sysconfig.get_paths()["purelib"]

    def pth_path(self):
        site = self.site_packages()
        return os.path.join(site, "sync-cluster-%s.pth" % self.store.project) if site else None

    def pth_content(self):
        return selector_pth_content(self.store.project_dir)

    def pth_state(self):
        """(content is exactly ours, the project directory the existing .pth serves or None)."""
        path = self.pth_path()
        if not path:
            return False, None
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                content = f.read()
        except OSError:
            return False, None
        first = content.split("\n", 1)[0]
        serves = pth_comment_project(first)
        if serves is None and first.strip().endswith("/current"):  # a protocol-1 .pth: a plain path line
            serves = os.path.dirname(first.strip())
        return content == self.pth_content(), serves

    def toil_worker_path(self):
        return os.path.join(self.venv, "bin", "_toil_worker")

    def toil_worker_ok(self):
        """The venv's `_toil_worker` is ours, or somebody else's (Toil reinstalled in the venv:
        `check` reports that), or Toil is not importable at all, so there is nothing to run."""
        try:
            with open(self.toil_worker_path(), encoding="utf-8", errors="replace") as f:
                f.readline()
                return True
        except OSError:
            return importlib.util.find_spec("toil") is None

    def ensure_toil_worker(self):
        path = self.toil_worker_path()
        if os.path.lexists(path) or importlib.util.find_spec("toil") is None:
            return None
        replace_file(path, TOIL_WORKER % (os.path.join(self.venv, "bin", "python"), TOIL_WORKER_MARK), 0o755)
        return path

    def write_pth(self):
        """Makes the venv run the selector, and gives it Toil's worker entry point."""
        path = self.pth_path()
        if not path:
            return False
        os.makedirs(os.path.join(self.store.project_dir, PINS), exist_ok=True)
        os.makedirs(os.path.join(self.store.project_dir, RUNS), exist_ok=True)
        self.ensure_toil_worker()
        if self.pth_state()[0]:
            return True
        content = self.pth_content()
        START.create_pth(path, content, self.store.project_dir,
                         lambda: replace_file(path, content, errors="surrogateescape"))
        return True

    # ---- readiness checks (sync-cluster check) ---------------------------------------------
    def pyvenv_cfg(self):
        """(path, line number, value) of include-system-site-packages, or None when absent."""
        path = os.path.join(self.venv, "pyvenv.cfg")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return path, None, None
        for i, line in enumerate(lines, 1):
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "include-system-site-packages":
                return path, i, value.strip().lower()
        return path, 0, None

    def venv_python(self):
        path = os.path.join(self.venv, "bin", "python")
        return path if os.access(path, os.X_OK) else None

    def probe_imports(self, python, modules, deep):
        """Asks the venv's python, in a fresh process, where toil and the workflow's imports come from."""
        import subprocess

        args = {"modules": modules, "deep": deep}
        if (not deep and os.path.realpath(sys.executable) == os.path.realpath(python) and self.site_packages()
                and START.holds()):
            # The quick form only looks modules up, and this agent already runs the venv's python
            # and a fresh one would read what it read at start (start_state.py): answer in-process.
            try:
                with START.as_fresh_interpreter():
                    importlib.invalidate_caches()  # a long-lived agent must see packages installed since
                    namespace = {"__name__": "sync_cluster_probe"}
                    exec(PROBE_IMPORTS, namespace)
                    return namespace["probe"](args)
            except Exception as e:
                return {"error": "%s: %s" % (type(e).__name__, e)}
        code = PROBE_IMPORTS
        try:
            out = subprocess.run([python, "-c", code, json.dumps(args)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"error": str(e)}
        if out.returncode != 0:
            lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
            return {"error": lines[-1] if lines else "the venv's python failed"}
        try:
            return json.loads(out.stdout.decode("utf-8", "replace"))
        except ValueError:
            return {"error": "unreadable answer"}

    def facts(self, req):
        """Facts for every check of `sync-cluster check`; the leader judges them (src/core/node-checks.ts)."""
        python = self.venv_python()
        cfg_path, cfg_line, cfg_value = self.pyvenv_cfg()
        facts = {
            "venvPython": python,
            "venvIsVenv": os.path.isfile(cfg_path),
            "pyvenvCfg": {"path": cfg_path, "line": cfg_line, "value": cfg_value},
        }
        if python:
            facts["imports"] = self.probe_imports(python, req.get("modules", []), bool(req.get("deep")))
        # The deploy directory, or its nearest existing parent, must be writable.
        probe = self.store.project_dir
        while not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        facts["deploy"] = {"path": self.store.project_dir, "existing": probe, "writable": os.access(probe, os.W_OK | os.X_OK)}
        try:
            st = os.statvfs(probe)
            facts["deploy"]["free"] = st.f_bavail * st.f_frsize
        except OSError:
            facts["deploy"]["free"] = None
        facts["pth"] = {"path": self.pth_path(), "expected": self.store.project_dir, "serves": self.pth_state()[1]}
        facts["current"] = self.store.current()
        facts["releases"] = self.store.releases()
        facts["venv"] = self.venv
        facts["projectDir"] = self.store.project_dir
        names = [n for n in req.get("topLevel", []) if isinstance(n, str)]
        if python and names:
            facts["entry"] = self.probe_origins(python, names, os.environ.get("PATH", os.defpath))
        job = req.get("toilWorker")
        if job:
            facts["toilWorker"] = self.probe_toil_worker(job.get("command", "_toil_worker"), job.get("path", ""), names)
        return facts

    def job_environment(self, path, release=None):
        """The environment a batch system's job gets: this agent's without PYTHON* and without a
        release of its own, `path` as PATH; outside any run (`current`), or as a job of a run on
        `release`."""
        env = {k: v for k, v in os.environ.items() if k != RELEASE_ENV and not k.startswith("PYTHON")}
        env["PATH"] = path
        env["SYNC_CLUSTER_NO_PIN"] = "1"
        if release:
            env[RELEASE_ENV] = "%s:%s" % (self.store.project, release)
        return env

    def probe_origins(self, python, names, path, release=None):
        """Where a fresh `python` started from "/" finds each top-level name: inside the project
        directory, or shadowed by another copy."""
        answer = self.fresh_origins(python, names, self.job_environment(path, release))
        answer.pop("seen", None)
        return answer

    def fresh_origins(self, python, names, env):
        """PROBE_ORIGINS's answer from a fresh `python` started from "/" with `env`; with what it
        read at its start under "seen"; {"error": ...} when it could not answer."""
        import subprocess

        try:
            out = subprocess.run([python, "-c", PROBE_ORIGINS, json.dumps(names)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd="/", env=env, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"error": str(e)}
        if out.returncode != 0:
            lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
            return {"error": lines[-1] if lines else "%s failed" % python}
        try:
            answer = json.loads(out.stdout.decode("utf-8", "replace"))
        except ValueError:
            return {"error": "unreadable answer from %s" % python}
        return answer if isinstance(answer, dict) else {"error": "unreadable answer from %s" % python}

    def verify(self, req):
        """Where a job's interpreter loads each top-level name from, asked after every publish of a
        fresh venv python started as a batch system starts a job: from "/", with RELEASE_ENV naming
        the release (`current`, or the one given), nothing of this agent's own sys.path. A long-lived
        agent (held by the daemon or by watch) read the venv's .pth files when it started: an import
        hook or path hack added since would be missed in-process.

        The answer of the last full verification on this host is given again, with no interpreter
        started, while the names and the fingerprint of what that interpreter read at its start
        (verify_fingerprint) are the same, and the release is the same or laid out the same
        (answer_for_release): a watch's every save is a new release of the same names."""
        names = sorted(set(n for n in req.get("topLevel", []) if isinstance(n, str)))
        current = self.store.current()
        release = req.get("release") if valid_release_id(req.get("release")) else current
        python = self.venv_python()
        if not python:
            return {"error": "%s/bin/python is missing" % self.venv, "projectDir": self.store.project_dir,
                    "current": release, "fromRecord": False}
        env = self.job_environment(os.environ.get("PATH", os.defpath), release)
        record = VerifyRecord(self.store.project_dir)
        known = record.read()
        seen = known.get("seen") if known else None
        if not self.valid_seen(seen) or not isinstance(known.get("answer"), dict):
            seen = None
        elif known.get("topLevel") == names and \
                known.get("fingerprint") == self.verify_fingerprint(python, seen, env, release, names):
            answer = dict(known["answer"]) if known.get("release") == release else \
                self.answer_for_release(known, release, names)
            if answer is not None:
                answer.update(projectDir=self.store.project_dir, current=release, fromRecord=True)
                return answer
        answer = self.verify_in_full(python, names, env, release, seen, record)
        answer.update(projectDir=self.store.project_dir, current=release, fromRecord=False)
        return answer

    def verify_in_full(self, python, names, env, release, seen, record):
        """Asks a fresh interpreter and records its answer, but only when the fingerprint taken
        before it started equals the one taken after it answered, over the same directories: a
        change made while it ran is never recorded as verified. The directories are the last
        record's; when the interpreter's differ (the first verification, a sys.path changed since),
        it is asked once more over its own."""
        for _ in range(2):
            before = self.verify_fingerprint(python, seen, env, release, names) if seen else None
            answer = self.fresh_origins(python, names, env)
            read = answer.pop("seen", None)
            if "error" in answer or not self.valid_seen(read):
                return answer  # an interpreter that could not answer: nothing to record
            inside = self.store.project_dir.rstrip("/") + "/"
            # The release's own directories are immutable and named by the release id the record is keyed by.
            read = {"dirs": [d for d in read["dirs"] if not d.startswith(inside)], "files": read["files"]}
            after = self.verify_fingerprint(python, read, env, release, names)
            if read == seen and before == after:
                record.write({"release": release, "topLevel": names, "seen": read, "fingerprint": after,
                              "answer": answer, "layout": self.release_layout(release, names)})
                return answer
            seen = read
        return answer

    def release_layout(self, release, names):
        """What `release` offers a new interpreter under `names` (import_fingerprint.release_layout);
        None for no release."""
        if not valid_release_id(release):
            return None
        return release_layout(os.path.join(self.store.releases_dir, release), self.store.roots(release), names)

    def answer_for_release(self, known, release, names):
        """The recorded answer, given for another `release` laid out as the recorded one under the
        same names: each origin inside the recorded release moved to the same path in `release`.
        None (a full verification) for an answer that cannot be moved so: one with an error, an
        origin elsewhere in the project directory, a customize file inside it, a release that is
        not on this node or is laid out otherwise."""
        old = known.get("release")
        origins = known["answer"].get("origins")
        layout = self.release_layout(release, names)
        if not valid_release_id(old) or not isinstance(origins, dict) or layout is None or \
                layout != known.get("layout") or not os.path.isdir(os.path.join(self.store.releases_dir, release)):
            return None
        inside = (self.store.project_dir.rstrip("/") + "/", os.path.realpath(self.store.project_dir) + "/")
        if any(f.startswith(inside) for f in known["seen"]["files"]):
            return None
        old_dir = os.path.join(self.store.releases_dir, old) + "/"
        new_dir = os.path.join(self.store.releases_dir, release) + "/"
        moved = {}
        for name, where in origins.items():
            if where is not None and not (isinstance(where, dict) and isinstance(where.get("origin"), str)
                                          and isinstance(where.get("real"), str)):
                return None
            if where is None or not where["origin"].startswith(old_dir):
                if where is not None and where["real"].startswith(inside):
                    return None
                moved[name] = where
                continue
            origin = new_dir + where["origin"][len(old_dir):]
            moved[name] = {"origin": origin, "real": os.path.realpath(origin)}
        answer = dict(known["answer"])
        answer["origins"] = moved
        return answer

    @staticmethod
    def valid_seen(seen):
        return (isinstance(seen, dict) and isinstance(seen.get("dirs"), list) and isinstance(seen.get("files"), list)
                and all(isinstance(p, str) for p in seen["dirs"] + seen["files"]))

    def verify_fingerprint(self, python, seen, env, release, names):
        """The fingerprint of what a fresh `python` reads at its start (import_fingerprint.py):
        the directories and customize files it `seen`, the venv's pyvenv.cfg, its environment,
        whether the release it is asked about is on the node (else it refuses the names), and
        what those directories hold under each of the `names`."""
        state = import_state(seen["dirs"], [os.path.join(self.venv, "pyvenv.cfg")] + seen["files"], [python], env)
        state.extend(package_state(seen["dirs"], names))
        # The release's presence, not its id: answer_for_release lets another release of the same layout match.
        state.append(("release", bool(release) and os.path.isdir(os.path.join(self.store.releases_dir, release))))
        return fingerprint(state)

    def probe_toil_worker(self, command, path, names):
        """Finds Toil's worker command the way a batch system's job will (the leader's PATH, or
        the absolute path Toil submits with TOIL_CHECK_ENV), the interpreter its first line names,
        and where that interpreter finds the workflow."""
        found = None
        if "/" in command:
            found = command if os.access(command, os.X_OK) and os.path.isfile(command) else None
        else:
            for d in path.split(":"):
                candidate = os.path.join(d or ".", command)
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    found = candidate
                    break
        out = {"command": command, "path": path, "found": found, "ours": False, "interpreter": None}
        if not found:
            return out
        try:
            with open(found, "rb") as f:
                head = f.read(4096)
        except OSError as e:
            out["error"] = str(e)
            return out
        out["ours"] = TOIL_WORKER_MARK.encode() in head
        first = head.split(b"\n", 1)[0]
        if not first.startswith(b"#!"):
            out["error"] = "%s does not start with #!" % found
            return out
        words = first[2:].decode("utf-8", "replace").split()
        if words and os.path.basename(words[0]) == "env" and len(words) > 1:
            words = words[1:]
            for d in path.split(":"):
                candidate = os.path.join(d or ".", words[0])
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    words[0] = candidate
                    break
        if not words:
            out["error"] = "%s has an empty #! line" % found
            return out
        out["interpreter"] = words[0]
        if names:
            out.update(self.probe_origins(words[0], names, path))
        return out

    def fix(self):
        """Creates a missing venv, or turns on system site-packages; never installs or removes packages."""
        import subprocess

        done = []
        if not self.venv_python():
            # The system's own python first: its site-packages are the ones the venv must see
            # (Toil and native libraries installed by the administrator), whatever PATH says.
            cmds = [["/usr/bin/python3", "-m", "venv", "--system-site-packages", self.venv],
                    ["python3", "-m", "venv", "--system-site-packages", self.venv],
                    ["virtualenv", "--system-site-packages", self.venv]]
            last = ""
            for cmd in cmds:
                try:
                    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
                except OSError as e:
                    last = str(e)
                    continue
                if out.returncode == 0:
                    done.append("created the virtualenv %s with %s --system-site-packages" % (self.venv, "virtualenv" if cmd[0] == "virtualenv" else cmd[0] + " -m venv"))
                    break
                last = out.stderr.decode("utf-8", "replace").strip()
            else:
                raise Refused("fix-failed", "could not create the virtualenv %s: %s" % (self.venv, last))
        path, line, value = self.pyvenv_cfg()
        if value != "true" and line is not None:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            if line:
                lines[line - 1] = "include-system-site-packages = true"
            else:
                lines.append("include-system-site-packages = true")
            replace_file(path, "\n".join(lines) + "\n", stat.S_IMODE(os.stat(path).st_mode))
            done.append("set include-system-site-packages = true in %s%s" % (path, " (line %d)" % line if line else ""))
        if self.venv_python() and self.ensure_toil_worker():
            done.append("wrote %s, so that jobs a batch system starts run Toil's worker with the venv's python"
                        % self.toil_worker_path())
        return {"done": done}

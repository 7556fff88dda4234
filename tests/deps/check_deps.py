#!/usr/bin/env python3
"""Checks that cmake/install-deps.sh installs every Debian package the project uses.

What is "used" is derived from what the build actually read, not from a list kept by hand:
  - configure: every file CMake executed or read (cmake --trace-expand --trace-format=json-v1 of a
    fresh configure of the source tree into a temporary folder), which names the CMake package
    files, pkg-config .pc files and modules configure found;
  - compile: every header the compiler read for every object (ninja -t deps of the build folder);
  - link: every library path in the build's link lines (build.ninja);
  - tests at run time: the Python modules that tests and scripts import, the programs their shell
    scripts call, and Node when a package.json is present.
Each file is mapped to the Debian package that owns it (dpkg's file lists); the packages the
script installs are expanded with their Depends closure (apt-cache depends --recurse, without
Recommends), Essential packages and their closure count as present. Anything used but neither
installed nor essential is reported by name, with a file that needs it, and the check fails.

--self-test additionally removes packages from a copy of the script and checks that each removal
is reported, so the check itself is shown able to fail.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77  # ctest's SKIP_RETURN_CODE for this test
PKG_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def script_packages(script):
    """Package names on the script's apt-get install lines (continuations joined)."""
    text = open(script, encoding="utf-8").read().replace("\\\n", " ")
    pkgs = set()
    for line in text.splitlines():
        if "apt-get install" not in line:
            continue
        for tok in line.split("apt-get install", 1)[1].split():
            if tok.startswith((">", "2>", "&", "|", ";")):
                break
            if not tok.startswith("-") and not tok.startswith("$") and PKG_RE.match(tok):
                pkgs.add(tok)
    return pkgs


class DependsGraph:
    """Depends/PreDepends edges of the packages reachable from some roots; a virtual package's
    node leads to its providers. Two or three apt-cache calls, whatever the number of roots."""

    def __init__(self, roots):
        self.edges = {}
        virtual_roots = self._read(roots)
        if virtual_roots:  # a listed virtual package counts as its providers
            providers = set()
            out = run(["apt-cache", "showpkg"] + sorted(virtual_roots)).stdout
            for section in out.split("Package: ")[1:]:
                name = section.split("\n", 1)[0].strip().split(":")[0]
                if "Reverse Provides:" in section:
                    for line in section.split("Reverse Provides:", 1)[1].strip().splitlines():
                        if line.split():
                            self.edges.setdefault(name, set()).add(line.split()[0])
                            providers.add(line.split()[0])
            self._read(providers)

    def _read(self, roots):
        """Adds the recursive dependencies of roots; returns the roots that are virtual."""
        out = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                   "--no-breaks", "--no-replaces", "--no-enhances"] + sorted(roots)).stdout
        current = virtual = None
        virtual_roots = set()
        for line in out.splitlines():
            if not line.strip():
                continue
            if not line.startswith(" "):
                current = line.strip().strip("<>").split(":")[0]
                if line.startswith("<") and current in roots:
                    virtual_roots.add(current)
                self.edges.setdefault(current, set())
            elif line.startswith("    "):  # a provider of the virtual package above
                if virtual:
                    self.edges.setdefault(virtual, set()).add(line.strip().split(":")[0])
            else:
                name = line.split(":", 1)[-1].strip()
                virtual = name.strip("<>").split(":")[0] if name.startswith("<") else None
                self.edges.setdefault(current, set()).add(name.strip("<>").split(":")[0])
        return virtual_roots

    def closure(self, roots):
        seen, todo = set(), list(roots)
        while todo:
            p = todo.pop()
            if p not in seen:
                seen.add(p)
                todo.extend(self.edges.get(p, ()))
        return seen


def essential_packages():
    out = run(["dpkg-query", "-W", "-f=${Package} ${Essential}\n"]).stdout
    return {l.split()[0] for l in out.splitlines() if l.endswith(" yes")}


def owners():
    """path -> package from dpkg's file lists (what dpkg -S searches, read once)."""
    table = {}
    for lst in glob.glob("/var/lib/dpkg/info/*.list"):
        pkg = os.path.basename(lst)[:-5].split(":")[0]
        with open(lst, encoding="utf-8", errors="replace") as f:
            for line in f:
                table.setdefault(line.rstrip("\n"), pkg)
    return table


def owner(table, path):
    """The package owning path, trying the path as given, its /usr-merged twin and its target."""
    candidates = [path]
    if path.startswith("/usr/lib/") or path.startswith("/usr/bin/") or path.startswith("/usr/sbin/"):
        candidates.append(path[4:])
    real = os.path.realpath(path)
    candidates += [real, real[4:] if real.startswith("/usr/") else real]
    for c in candidates:
        if c in table:
            return table[c]
    return None


def configure_files(source, build_type):
    with tempfile.TemporaryDirectory() as tmp:
        r = run(["cmake", "-S", source, "-B", os.path.join(tmp, "b"), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=" + build_type,
                 "--trace-expand", "--trace-format=json-v1"])
        if r.returncode != 0:
            sys.exit("error: configure of %s failed; its output ends with:\n%s" % (source, r.stdout[-2000:] + r.stderr[-2000:]))
        files = set()
        for line in r.stderr.splitlines():
            if line.startswith("{"):
                try:
                    f = json.loads(line).get("file", "")
                except ValueError:
                    continue
                if f.startswith("/usr/"):
                    files.add(f)
        # The .pc files pkg-config read, and files named in the cache (found libraries, programs).
        cache = open(os.path.join(tmp, "b", "CMakeCache.txt"), encoding="utf-8").read()
        for m in re.finditer(r"(/usr/[^;\s]+)", cache):
            if os.path.isfile(m.group(1)):
                files.add(m.group(1))
        return files


def compile_files(build):
    r = run(["ninja", "-C", build, "-t", "deps"])
    if r.returncode != 0:
        sys.exit("error: ninja -t deps in %s failed: %s" % (build, r.stderr.strip()))
    files = {l.strip() for l in r.stdout.splitlines() if l.startswith("    /usr/")}
    ninja = open(os.path.join(build, "build.ninja"), encoding="utf-8").read()
    for m in re.finditer(r"(/usr/lib[^\s;:]+\.(?:so|a)(?:\.[0-9.]+)?)", ninja):
        files.add(m.group(1))
    return files


def python_modules(paths):
    mods = set()
    pat = re.compile(r"^\s*(?:import\s+([\w., ]+)|from\s+(\w+)[\w.]*\s+import\b)", re.M)
    inline = re.compile(r"python3?\s+-c\s+[\"'](?:[^\"']*;\s*)?import\s+([\w., ]+)")
    for p in paths:
        text = open(p, encoding="utf-8", errors="replace").read()
        for m in list(pat.finditer(text)) + list(inline.finditer(text)):
            names = m.group(1) or m.group(2)
            for n in names.split(","):
                n = n.strip().split(" ")[0].split(".")[0]
                if re.match(r"^[A-Za-z_]\w*$", n):
                    mods.add(n)
    return mods


def module_files(mods, where):
    """Each module's file; a module that does not import is reported with the file that wants it."""
    files, missing = {}, []
    py = "/usr/bin/python3"  # Debian's; a python3 earlier on PATH (pyenv, a venv) is not on a fresh machine
    if not os.path.exists(py):
        return files, ["python3 (used by %s)" % where]
    for m in sorted(mods):
        r = run([py, "-c", "import %s, sys; print(getattr(%s, '__file__', None) or sys.executable)" % (m, m)])
        if r.returncode != 0:
            missing.append("Python module %s" % m)
        else:
            files["/usr/bin/python3" if r.stdout.strip() == sys.executable else r.stdout.strip()] = "import " + m
    files.setdefault(py, "python3")
    return files, missing


SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
BUILTINS = set("""alias bg break builtin case cd command continue declare do done echo elif else esac eval exec
exit export false fi for function getopts hash if in jobs kill let local printf pwd read readonly return set shift
source test then time trap true type ulimit umask unset until wait while""".split())


def script_programs(paths):
    progs = set()
    start = re.compile(r"(?:^|[|;&]|\$\(|&&|\|\||\bthen\b|\bdo\b|\belse\b)\s*([A-Za-z_][\w.+-]*)(?=\s|$)")
    for p in paths:
        for line in open(p, encoding="utf-8", errors="replace"):
            line = line.split(" #", 1)[0]
            if line.lstrip().startswith("#"):
                continue
            for m in start.finditer(line):
                w = m.group(1)
                if w not in BUILTINS and "=" not in w:
                    progs.add(w)
            for m in re.finditer(r"(/usr/s?bin/[\w.+-]+)", line):
                progs.add(m.group(1))
    return progs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--script", help="install script (default: SOURCE/cmake/install-deps.sh)")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    src, script = os.path.abspath(a.source), a.script or os.path.join(a.source, "cmake", "install-deps.sh")

    for tool in ("apt-cache", "dpkg-query", "ninja", "cmake"):
        if not shutil.which(tool):
            print("skip: %s not found; the dependency check needs a Debian machine" % tool)
            return SKIP
    if "Candidate: (none)" in run(["apt-cache", "policy", "build-essential"]).stdout or \
            not run(["apt-cache", "policy", "build-essential"]).stdout.strip():
        print("skip: apt has no package lists (run apt-get update, or cmake/install-deps.sh)")
        return SKIP

    build_type = "Release"
    cache = os.path.join(a.build, "CMakeCache.txt")
    if os.path.exists(cache):
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(\S*)", open(cache, encoding="utf-8").read(), re.M)
        build_type = m.group(1) if m and m.group(1) else build_type

    used = {}  # file -> why
    for f in configure_files(src, build_type):
        used.setdefault(f, "configure")
    for f in compile_files(a.build):
        used.setdefault(f, "compile")
    test_files = [p for p in glob.glob(os.path.join(src, "tests", "**", "*"), recursive=True)
                  if os.path.isfile(p) and p.endswith((".py", ".sh", ".cpp", ".h")) and "/deps/" not in p]
    shell = [p for p in test_files if p.endswith(".sh")] + [os.path.join(src, ".ci", "run"), script]
    # The project's own Python modules (tests/reference/numpy_reference.py) come with the source.
    local = {os.path.splitext(os.path.basename(p))[0] for p in test_files if p.endswith(".py")}
    mod_files, missing = module_files(python_modules(test_files) - local, "tests")
    for f, why in mod_files.items():
        used.setdefault(f, "tests: " + why)
    for prog in sorted(script_programs([p for p in shell if os.path.exists(p)])):
        # Looked up where Debian installs programs: what PATH adds (pyenv, ~/.local) is not on a
        # fresh machine, so a program found only there is reported.
        path = prog if prog.startswith("/") else shutil.which(prog, path=SYSTEM_PATH)
        if path:
            used.setdefault(path, "scripts: " + os.path.basename(prog))
        elif shutil.which(prog):
            missing.append("program %s (only at %s, not from a Debian package)" % (prog, shutil.which(prog)))
    if glob.glob(os.path.join(src, "tests", "**", "package.json"), recursive=True):
        for prog in ("node", "npm"):
            path = shutil.which(prog)
            if path:
                used.setdefault(path, "tests: package.json")
            else:
                missing.append("%s (tests have a package.json)" % prog)

    table = owners()
    by_pkg, unowned = {}, []
    for f, why in sorted(used.items()):
        pkg = owner(table, f)
        if pkg:
            by_pkg.setdefault(pkg, (f, why))
        elif os.path.exists(f) and not f.startswith("/usr/local/") and "__pycache__" not in f:
            unowned.append("%s (%s)" % (f, why))

    installed = script_packages(script)
    if not installed:
        print("error: %s: no 'apt-get install' line with package names found" % script)
        return 1
    graph = DependsGraph(installed | essential_packages())
    essential = graph.closure(essential_packages())

    def closure(pkgs):
        return graph.closure(pkgs)

    def missing_for(pkgs):
        have = closure(pkgs) | essential
        return sorted(p for p in by_pkg if p not in have)

    gaps = missing_for(installed)
    print("dependency check: %d files used by configure, compile, link and tests come from %d Debian packages; "
          "%s installs %d packages (%d with their Depends closure)" % (len(used), len(by_pkg), os.path.relpath(script, src),
                                                                         len(installed), len(closure(installed))))
    ok = True
    for p in gaps:
        f, why = by_pkg[p]
        print("error: package %s is used but %s does not install it (%s reads %s)" % (p, os.path.relpath(script, src), why, f))
        ok = False
    for u in unowned:
        print("error: %s is used but no Debian package owns it (installed by hand?)" % u)
        ok = False
    for m in missing:
        print("error: %s is used by the tests but not available" % m)
        ok = False

    if a.self_test and ok:
        # Remove packages the build or tests need and which nothing else listed pulls in; each
        # removal must be reported by name.
        probes = [p for p in sorted(installed) if p in by_pkg and p not in closure(installed - {p}) | essential]
        if not probes:
            print("error: self-test: no listed package is needed on its own; nothing to remove")
            return 1
        for p in probes:
            if p not in missing_for(installed - {p}):
                print("error: self-test: removing %s from the install script was not detected" % p)
                ok = False
        print("self-test: removing any one of %s from the script is reported" % ", ".join(probes))
    print("dependency check %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

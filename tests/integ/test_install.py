"""test_install - `make install` into a DESTDIR, checked the way an operator
and systemd will use it.

It runs `make install DESTDIR=<temp>` in the build tree (the directories
are the ones configure chose), asks make for those directories, and checks:

  * the daemon, the CLI, every man page of man/, warren.conf, the systemd
    unit, the bash completion and the data and log directories are there;
  * the unit's ExecStart runs the installed warrend with the installed
    warren.conf, every path the unit names exists (in the DESTDIR when it
    is one of ours, on this machine otherwise: /bin/kill), every man page
    its Documentation= names is installed, and `systemd-analyze verify`
    finds nothing wrong with it (when systemd-analyze is installed);
  * every path in the FILES sections of the man pages exists, read with
    this build's directories (/etc is sysconfdir, /var is localstatedir),
    or, for a file warrend creates at run time, lies in a directory the
    unit lets it write;
  * the installed warrend runs `--help`;
  * a second install keeps an edited warren.conf; `make uninstall` removes
    every file the install added except that edited warren.conf.
"""

import os
import re
import shutil
import subprocess
import tempfile

from warren_test import SKIP, Checks

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("top_srcdir") or os.path.join(HERE, "..", "..")
BUILDDIR = os.environ.get("top_builddir") or (
    "." if os.path.isfile("Makefile") else os.path.join(HERE, "..", ".."))
DIRS = ("prefix", "bindir", "sbindir", "sysconfdir", "localstatedir", "datadir", "mandir",
        "systemdsystemunitdir")

t = Checks()


def make(*args):
    """Run make in the build tree, apart from any make that runs this test
    (its jobserver and flags are not ours)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-s", "-C", BUILDDIR, *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=300)


def install_dirs():
    """The installation directories, as make expands them."""
    with tempfile.NamedTemporaryFile("w", suffix=".mk", delete=False) as f:
        f.write("wr-print-dirs:\n")
        for d in DIRS:
            f.write("\t@echo '%s=$(%s)'\n" % (d, d))
    try:
        p = make("-f", "Makefile", "-f", f.name, "wr-print-dirs")
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        raise RuntimeError("make could not print the directories: " + p.stderr)
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        out.update(os.path.relpath(os.path.join(d, n), root) for n in names)
    return out


def read_unit(path):
    """Key -> list of values of a unit file, every section together."""
    keys = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def man_files(page):
    """The .Pa paths of the FILES section of an mdoc page."""
    paths, inside = [], False
    with open(page) as f:
        for line in f:
            if line.startswith(".Sh "):
                inside = line.split(None, 1)[1].strip() == "FILES"
            elif inside and line.startswith(".It Pa "):
                paths.append(line.split()[2])
    return paths


def main():
    if shutil.which("make") is None or not os.path.isfile(os.path.join(BUILDDIR, "Makefile")):
        print("skip: no configured build tree with make")
        return SKIP
    dirs = install_dirs()
    dest = tempfile.mkdtemp(prefix="warren-install-")
    try:
        return check_install(dirs, dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def check_install(dirs, dest):
    def inst(path):
        return dest + path

    p = make("install", "DESTDIR=" + dest)
    if not t.check(p.returncode == 0, "make install DESTDIR=... succeeds (%s)" % p.stderr.strip()):
        return 1

    # What is installed.
    for path in (dirs["sbindir"] + "/warrend", dirs["bindir"] + "/warrenctl"):
        t.check(os.access(inst(path), os.X_OK), "%s is installed and executable" % path)
    pages = sorted(n for n in os.listdir(os.path.join(SRCDIR, "man")) if re.search(r"\.[1-8]$", n))
    for n in pages:
        path = "%s/man%s/%s" % (dirs["mandir"], n[-1], n)
        t.check(os.path.isfile(inst(path)), "man page %s is installed" % path)
    conf = dirs["sysconfdir"] + "/warren/warren.conf"
    with open(os.path.join(BUILDDIR, "etc", "warren.conf")) as f:
        built_conf = f.read()
    t.check(os.path.isfile(inst(conf)) and open(inst(conf)).read() == built_conf,
            "%s is installed, paths substituted" % conf)
    t.check("@" + "localstatedir@" not in built_conf, "no @...@ is left in warren.conf")
    completion = dirs["datadir"] + "/bash-completion/completions/warrenctl"
    t.check(os.path.isfile(inst(completion)), "bash completion at %s" % completion)
    for d in (dirs["localstatedir"] + "/lib/warren", dirs["localstatedir"] + "/log/warren"):
        t.check(os.path.isdir(inst(d)), "directory %s is created" % d)

    # The unit.
    unit = dirs["systemdsystemunitdir"] + "/warrend.service"
    if t.check(os.path.isfile(inst(unit)), "the unit is installed at %s" % unit):
        check_unit(dirs, dest, unit)

    # The man pages' FILES, with this build's directories.
    writable = read_unit(inst(unit)).get("ReadWritePaths", []) if os.path.isfile(inst(unit)) else []
    writable = [w.lstrip("-") for v in writable for w in v.split()]
    for n in pages:
        for path in man_files(os.path.join(SRCDIR, "man", n)):
            if not path.startswith("/"):
                continue  # ~/.config/...: the user's, not ours
            built = re.sub(r"^/etc(?=/)", dirs["sysconfdir"], path)
            built = re.sub(r"^/var(?=/)", dirs["localstatedir"], built)
            ok = os.path.exists(inst(built)) or os.path.dirname(built) in writable
            t.check(ok, "%s names %s: installed as %s" % (n, path, built))

    # The installed daemon runs.
    p = subprocess.run([inst(dirs["sbindir"] + "/warrend"), "--help"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    t.check(p.returncode == 0 and "--config" in p.stdout, "the installed warrend runs --help")

    # An edited warren.conf survives a reinstall and an uninstall.
    with open(inst(conf), "a") as f:
        f.write("# edited by the operator\n")
    p = make("install", "DESTDIR=" + dest)
    t.check(p.returncode == 0 and open(inst(conf)).read().endswith("# edited by the operator\n"),
            "a second make install keeps an edited warren.conf")
    p = make("uninstall", "DESTDIR=" + dest)
    left = files_under(dest)
    t.check(p.returncode == 0 and left == {conf.lstrip("/")},
            "make uninstall removes every installed file but the edited warren.conf (left: %s)"
            % sorted(left))
    t.check(not os.path.exists(inst(dirs["localstatedir"] + "/lib/warren")),
            "make uninstall removes the empty data directory")
    os.unlink(inst(conf))
    p = make("install", "DESTDIR=" + dest)
    p = make("uninstall", "DESTDIR=" + dest)
    t.check(p.returncode == 0 and not files_under(dest),
            "an unedited install is removed whole (left: %s)" % sorted(files_under(dest)))
    return 1 if t.failed else 0


def check_unit(dirs, dest, unit):
    keys = read_unit(dest + unit)
    ours = [dirs[d] for d in ("sbindir", "sysconfdir", "localstatedir")]  # what make substitutes

    def exists(path):
        if any(path.startswith(o + "/") or path == o for o in ours):
            return os.path.exists(dest + path)
        return os.path.exists(path)

    start = keys.get("ExecStart", [""])[0].split()
    t.check(start[:1] == [dirs["sbindir"] + "/warrend"],
            "ExecStart runs the installed warrend (%s)" % " ".join(start))
    conf = dirs["sysconfdir"] + "/warren/warren.conf"
    t.check("-c" in start and start[start.index("-c") + 1:][:1] == [conf],
            "ExecStart reads the installed warren.conf")
    named = []
    for k in ("ExecStart", "ExecReload", "ExecStop", "ExecStartPre", "ReadWritePaths",
              "ReadOnlyPaths", "WorkingDirectory", "PIDFile", "EnvironmentFile"):
        for v in keys.get(k, []):
            named += [w.lstrip("-+!@:") for w in v.split() if w.lstrip("-+!@:").startswith("/")]
    for path in named:
        t.check(exists(path), "the unit names %s: it exists" % path)
    for v in keys.get("Documentation", []):
        for doc in v.split():
            m = re.match(r"man:([\w.-]+)\((\d)\)$", doc)
            if m:
                path = "%s/man%s/%s.%s" % (dirs["mandir"], m.group(2), m.group(1), m.group(2))
                t.check(os.path.isfile(dest + path), "the unit's Documentation %s is installed"
                        % doc)

    # systemd-analyze verify, on a copy whose own paths point into the
    # DESTDIR (it checks that ExecStart is executable and the man pages
    # exist; --root would also want the rest of systemd's units there).
    if shutil.which("systemd-analyze") is None:
        print("skip: systemd-analyze is not installed")
        return
    with open(dest + unit) as f:
        text = f.read()
    for o in sorted(set(ours), key=len, reverse=True):
        text = re.sub(r"(?<![\w/])" + re.escape(o) + r"(?=/|\s|$)", dest + o, text)
    vdir = tempfile.mkdtemp(prefix="warren-verify-")
    try:
        with open(os.path.join(vdir, "warrend.service"), "w") as f:
            f.write(text)
        env = dict(os.environ, MANPATH=dest + dirs["mandir"])
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(vdir, "warrend.service")],
                           capture_output=True, text=True, env=env, timeout=60,
                           stdin=subprocess.DEVNULL)
        t.check(p.returncode == 0 and not p.stderr.strip() and not p.stdout.strip(),
                "systemd-analyze verify is clean (%s)" % (p.stderr.strip() or p.stdout.strip()))
    finally:
        shutil.rmtree(vdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""The Debian packages (./build.sh package, debian/): built once, installed
with dpkg -i into this machine's nginx and apache2, a site on the standard
paths, the system servers started (in this test's network namespace), a
certificate from pebble validating http-01 on port 80 as a real CA does, an
upgrade to a rebuilt package while serving, remove and purge; the machine
is left as it was found (even on failure: the finalizer purges the
packages, stops the servers and restores every file below SYSTEM_PATHS).

dpkg's lock is global (other runs on this machine may install packages):
each dpkg call takes dpkg's frontend lock first, waiting a bounded time,
as apt does (DPKG_FRONTEND_LOCKED)."""

import fcntl
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time

import pytest

from pebble import Pebble
from tlsutil import Hammer, served_cert, wait_acme_cert, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG_DIR = os.path.join(REPO, "build", "package")
NGINX_PKG = "libnginx-mod-http-acme"
APACHE_PKG = "libapache2-mod-acme-auto"
NGINX_SO = "/usr/lib/nginx/modules/ngx_http_acme_module.so"
APACHE_SO = "/usr/lib/apache2/modules/mod_acme_auto.so"
NGINX_LINK = "/etc/nginx/modules-enabled/50-mod-http-acme.conf"
NGINX_SITE = "/etc/nginx/sites-enabled/acme-pkg-test"
APACHE_SITE = "/etc/apache2/sites-available/acme-pkg-test.conf"
NGINX_STORE = "/var/lib/nginx/acme"
APACHE_STORE = "/var/lib/apache2/acme"
NAME = "pkg.example.test"
DPKG_LOCK = "/var/lib/dpkg/lock-frontend"
DPKG_LOCK_WAIT = 600
# what the test (the packages, the servers, a2enmod) may change; restored
SYSTEM_PATHS = ["/etc/nginx", "/var/lib/nginx", "/var/log/nginx", "/etc/apache2",
                "/var/lib/apache2", "/var/log/apache2", "/run/apache2", "/run/lock/apache2"]

NGINX_CONF = """\
acme_issuer pebble {
    uri @DIR@;
    contact admin@example.test;
    accept_terms_of_service;
    ssl_trusted_certificate @CA@;
}

server {
    listen 443 ssl;
    server_name @NAME@;
    acme_certificate pebble;
    location / { return 200 "hello\\n"; }
}

server {
    listen 80;                  # http-01 is answered here by the module
    server_name @NAME@;
    location / { return 301 https://$host$request_uri; }
}
"""

APACHE_CONF = """\
<AcmeIssuer pebble>
    AcmeDirectory @DIR@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
</AcmeIssuer>
<VirtualHost *:443>
    ServerName @NAME@
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
<VirtualHost *:80>
    ServerName @NAME@
</VirtualHost>
"""


# -- the machine's state ------------------------------------------------------
def snapshot(roots=SYSTEM_PATHS):
    """{path: (kind, mode, uid, gid, content or link target)} below roots."""
    state = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        for d, dirs, files in os.walk(root):
            for name in [""] + dirs + files:
                p = os.path.join(d, name) if name else d
                if name == "" and d != root:
                    continue
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    data = ("l", os.readlink(p))
                elif stat.S_ISDIR(st.st_mode):
                    data = ("d", None)
                elif stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        data = ("f", f.read())
                else:
                    data = ("o", None)
                state[p] = (data[0], stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data[1])
    return state


def differences(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def restore(before):
    """Puts every path of SYSTEM_PATHS back as in before."""
    after = snapshot()
    for p in sorted((p for p in after if p not in before), key=len, reverse=True):
        if after[p][0] == "d":
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            os.unlink(p)
    for p in sorted(before, key=len):
        kind, mode, uid, gid, data = before[p]
        if after.get(p) == before[p]:
            continue
        if os.path.lexists(p) and (after.get(p) or ("",))[0] != kind:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        if kind == "d":
            os.makedirs(p, exist_ok=True)
        elif kind == "l":
            if os.path.lexists(p):
                os.unlink(p)
            os.symlink(data, p)
        elif kind == "f":
            with open(p, "wb") as f:
                f.write(data)
        if kind != "l":
            os.chown(p, uid, gid)
            os.chmod(p, mode)
        else:
            os.lchown(p, uid, gid)


# -- dpkg ---------------------------------------------------------------------
def dpkg(*args, env=None):
    """dpkg with its frontend lock held (waited for, bounded): output."""
    fd = os.open(DPKG_LOCK, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        deadline = time.monotonic() + DPKG_LOCK_WAIT
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                assert time.monotonic() < deadline, \
                    "dpkg's lock %s held by another process for %ss" % (DPKG_LOCK, DPKG_LOCK_WAIT)
                time.sleep(1)
        e = dict(os.environ, DPKG_FRONTEND_LOCKED="1", DEBIAN_FRONTEND="noninteractive",
                 **(env or {}))
        r = subprocess.run(["dpkg"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=e, timeout=300)
    finally:
        os.close(fd)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "dpkg %s: %s" % (" ".join(args), out)
    return out


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return r.returncode == 0 and r.stdout.decode().split()[-1:] != ["not-installed"]


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode(errors="replace")
    assert not check or r.returncode == 0, "%s: %s" % (" ".join(cmd), out)
    return r.returncode, out


def build_packages(workdir):
    """./build.sh package -> {package: deb}, and a rebuilt one of each with
    a higher version.  Packaged: the modules the suite tests (build/, made
    by ./build.sh build), not compiled again with Debian's flags (minutes
    on two busy cores); no lintian (slow: ./build.sh package runs it)."""
    for so in ("nginx/ngx_http_acme_module.so", "apache/mod_acme_auto.so"):
        assert os.path.isfile(os.path.join(REPO, "build", so)), "./build.sh build first"
    r = subprocess.run([os.path.join(REPO, "build.sh"), "package"], cwd=REPO,
                       env=dict(os.environ, ACME_PACKAGE_LINTIAN="no",
                                ACME_PACKAGE_PREBUILT=os.path.join(REPO, "build")),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-4000:]
    debs, rebuilt = {}, {}
    for pkg in (NGINX_PKG, APACHE_PKG):
        found = [f for f in os.listdir(PKG_DIR) if f.startswith(pkg + "_") and f.endswith(".deb")]
        assert len(found) == 1, found
        debs[pkg] = os.path.join(PKG_DIR, found[0])
        # the "rebuilt package": the same files, a higher version
        tree = os.path.join(workdir, pkg)
        run("dpkg-deb", "-R", debs[pkg], tree)
        control = os.path.join(tree, "DEBIAN", "control")
        with open(control) as f:
            text = f.read()
        version = [line.split(": ", 1)[1] for line in text.splitlines()
                   if line.startswith("Version: ")][0]
        with open(control, "w") as f:
            f.write(text.replace("Version: %s\n" % version, "Version: %s+rebuild1\n" % version))
        rebuilt[pkg] = os.path.join(workdir, "%s_%s+rebuild1.deb" % (pkg, version))
        run("dpkg-deb", "-b", tree, rebuilt[pkg])
    return debs, rebuilt


# -- the system servers -------------------------------------------------------
def nginx_pids():
    try:
        with open("/run/nginx.pid") as f:
            return [int(f.read().strip())]
    except (OSError, ValueError):
        return []


def apache_pids():
    try:
        with open("/run/apache2/apache2.pid") as f:
            return [int(f.read().strip())]
    except (OSError, ValueError):
        return []


def mapped(pid, so):
    """How the process maps the module file: "new" (the file at that path
    now), "deleted" (the one the upgrade replaced) or None."""
    with open("/proc/%d/maps" % pid) as f:
        lines = [line.rstrip("\n") for line in f if so in line]
    if not lines:
        return None
    return "deleted" if all(line.endswith("(deleted)") for line in lines) else "new"


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_servers():
    for pids, cmd in ((nginx_pids(), ["/usr/sbin/nginx", "-s", "stop"]),
                      (apache_pids(), ["/usr/sbin/apache2ctl", "stop"])):
        if not pids or not alive(pids[0]):
            continue
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        deadline = time.monotonic() + 20
        while alive(pids[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pids[0]):
            os.killpg(os.getpgid(pids[0]), 9)


@pytest.fixture
def machine(workdir):
    """The system as found, restored at the end whatever happens."""
    assert os.geteuid() == 0, "installs packages: root only"
    for pkg in (NGINX_PKG, APACHE_PKG):
        assert not installed(pkg), "%s is installed on this machine: the test " \
            "would remove it; purge it first" % pkg
    assert not nginx_pids() and not apache_pids(), "the system nginx/apache2 is running"
    before = snapshot()
    yield before
    stop_servers()
    for pkg in (NGINX_PKG, APACHE_PKG):
        if installed(pkg):
            dpkg("--purge", pkg)
    restore(before)


def _own_netns():
    """A network namespace with nothing but loopback (unshare -n)."""
    with open("/proc/self/net/dev") as f:
        return [line.split(":")[0].strip() for line in f.readlines()[2:]] == ["lo"]


def mode_owner(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


def test_packages(request, workdir):
    """Both packages through install, issuance, upgrade while serving,
    remove and purge."""
    if not _own_netns():
        # the system servers listen on ports 80 and 443 of every address:
        # only in a network namespace of our own (as t/run_shards.py does)
        assert "ACME_PKG_TEST_NETNS" not in os.environ, "unshare -n gave no namespace of our own"
        cmd = ["env", "ACME_PKG_TEST_NETNS=1", "unshare", "-n",
               "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
               sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
               "%s::test_packages" % __file__]
        r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=1800)
        assert r.returncode == 0, r.stdout.decode(errors="replace")[-8000:]
        return
    before = request.getfixturevalue("machine")
    debs, rebuilt = build_packages(workdir)
    pebble = Pebble(workdir, http_port=80)
    pebble.start()
    try:
        root = pebble.write_root(os.path.join(workdir, "root.pem"))
        values = {"@DIR@": pebble.directory_url, "@CA@": pebble.ca_pem, "@NAME@": NAME}

        def site(template):
            for k, v in values.items():
                template = template.replace(k, v)
            return template

        nginx_scenario(before, debs[NGINX_PKG], rebuilt[NGINX_PKG], root, site(NGINX_CONF))
        apache_scenario(before, debs[APACHE_PKG], rebuilt[APACHE_PKG], root, site(APACHE_CONF))
    finally:
        pebble.stop()
    # both purged, the test's own sites removed: what is left is what the
    # servers wrote (logs, run dirs) and mod_ssl, enabled as acme_auto's
    # dependency by a2enmod (the finalizer puts all of it back)
    changed = differences(before, snapshot())
    left = [p for p in changed if "acme" in p or (
        p.startswith("/etc/") and not p.startswith(("/etc/apache2/mods-enabled/ssl.",
                                                    "/etc/apache2/mods-enabled/socache_shmcb.")))]
    # a2dissite's record of the test's own site
    left = [p for p in left if not p.startswith("/var/lib/apache2/site/")]
    assert left == [], left


def serving(port, root, serial):
    """The ACME certificate with this serial verifies on port."""
    assert served_cert(port, NAME, cafile=root).serial_number == serial


def upgrade_while_serving(pkg, deb, so, root, serial, reload):
    """dpkg -i of the rebuilt package under full handshakes in a loop: the
    module file is replaced (a new inode), nothing fails; then reload()."""
    inode = os.stat(so).st_ino
    hammer = Hammer(443, root, sni=NAME, max_seconds=120)
    hammer.start()
    try:
        wait_for(lambda: hammer.ok > 0, 20, "handshakes before the upgrade")
        out = dpkg("-i", deb)
        seen = hammer.ok
        wait_for(lambda: hammer.ok > seen, 20, "handshakes after the upgrade")
        reload()
        seen = hammer.ok
        wait_for(lambda: hammer.ok > seen, 20, "handshakes after the reload")
    finally:
        hammer.stop_event.set()
        hammer.join(30)
    assert hammer.failures == [], hammer.failures[:5]
    assert set(hammer.serials) == {serial}, hammer.serials
    assert os.stat(so).st_ino != inode, "the module file was not replaced"
    assert installed(pkg) and "+rebuild1" in run("dpkg-query", "-W", pkg)[1], out


def nginx_scenario(before, deb, rebuilt, root, conf):
    dpkg("-i", deb)
    # installed as Debian's libnginx-mod-* are: the load file, enabled by a
    # symlink in modules-enabled; the store for the workers' user
    assert os.path.isfile(NGINX_SO)
    with open("/usr/share/nginx/modules-available/mod-http-acme.conf") as f:
        assert f.read() == "load_module modules/ngx_http_acme_module.so;\n"
    assert os.readlink(NGINX_LINK) == "/usr/share/nginx/modules-available/mod-http-acme.conf"
    assert mode_owner(NGINX_STORE) == (0o750, "root", "www-data")

    with open(NGINX_SITE, "w") as f:
        f.write(conf)
    # the package's store is one the module accepts without a word
    out = run("/usr/sbin/nginx", "-t")[1]
    assert "[warn]" not in out and "[emerg]" not in out, out
    run("/usr/sbin/nginx")
    cert = wait_acme_cert(443, NAME, root, 60)
    bundle = os.path.join(NGINX_STORE, "pebble", "certs", "%s_ecdsa-256" % NAME, "bundle.pem")
    assert os.path.isfile(bundle)
    with open(bundle, "rb") as f:
        stored = f.read()

    # the upgrade replaces the module under the running nginx; the reload
    # (dpkg's nginx-reload trigger, done by hand: invoke-rc.d may be denied
    # here) serves the stored certificate, no new order
    upgrade_while_serving(NGINX_PKG, rebuilt, NGINX_SO, root, cert.serial_number,
                          lambda: run("/usr/sbin/nginx", "-s", "reload"))
    assert os.readlink(NGINX_LINK) == "/usr/share/nginx/modules-available/mod-http-acme.conf"
    with open(NGINX_SITE) as f:
        assert f.read() == conf
    # a reload keeps the module loaded (dlopen of the same path), a
    # restart loads the new file and serves the stored certificate at once
    assert mapped(nginx_pids()[0], NGINX_SO) == "deleted"
    stop_servers()
    run("/usr/sbin/nginx")
    assert mapped(nginx_pids()[0], NGINX_SO) == "new"
    wait_for(lambda: served_cert(443, NAME, cafile=root).serial_number == cert.serial_number,
             20, "the stored certificate after the restart")
    with open(bundle, "rb") as f:
        assert f.read() == stored
    stop_servers()

    # remove: the module is disabled as Debian does (modules-enabled link
    # renamed *.removed), the user's site and the store stay
    dpkg("-r", NGINX_PKG)
    assert not os.path.exists(NGINX_SO)
    assert not os.path.lexists(NGINX_LINK) and os.path.islink(NGINX_LINK + ".removed")
    with open(NGINX_SITE) as f:
        assert f.read() == conf
    assert os.path.isfile(bundle)
    # purge: the links go, the store is kept (README "Install")
    out = dpkg("--purge", NGINX_PKG)
    assert "kept the certificate store /var/lib/nginx/acme" in out, out
    assert not os.path.lexists(NGINX_LINK + ".removed")
    assert os.path.isfile(bundle)
    os.unlink(NGINX_SITE)
    shutil.rmtree(NGINX_STORE)
    assert not installed(NGINX_PKG)


def apache_scenario(before, deb, rebuilt, root, conf):
    dpkg("-i", deb)
    # enabled by apache2-maintscript-helper (a2enmod, with mod_ssl)
    assert os.path.isfile(APACHE_SO)
    assert run("a2query", "-m", "acme_auto", check=False)[0] == 0
    assert run("a2query", "-m", "ssl", check=False)[0] == 0
    assert mode_owner(APACHE_STORE) == (0o750, "root", "www-data")

    with open(APACHE_SITE, "w") as f:
        f.write(conf)
    run("a2ensite", "-q", "acme-pkg-test")
    out = run("/usr/sbin/apache2ctl", "configtest")[1]
    assert "acme" not in out.lower(), out
    run("/usr/sbin/apache2ctl", "start")
    cert = wait_acme_cert(443, NAME, root, 60)
    bundle = os.path.join(APACHE_STORE, "pebble", "certs", "%s_ecdsa-256" % NAME, "bundle.pem")
    assert os.path.isfile(bundle)

    # the upgrade replaces the module under the running Apache, whose
    # graceful restart loads the new file and serves the stored certificate
    upgrade_while_serving(APACHE_PKG, rebuilt, APACHE_SO, root, cert.serial_number,
                          lambda: run("/usr/sbin/apache2ctl", "graceful"))
    # the package's store is one the module accepts without a warning
    with open("/var/log/apache2/error.log", errors="replace") as f:
        log = f.read()
    assert "mod_acme_auto" in log and "above the store" not in log, log[-3000:]
    assert mapped(apache_pids()[0], APACHE_SO) == "new"
    assert run("a2query", "-m", "acme_auto", check=False)[0] == 0
    with open(APACHE_SITE) as f:
        assert f.read() == conf
    stop_servers()

    # remove: a2dismod; the user's site stays
    dpkg("-r", APACHE_PKG)
    assert not os.path.exists(APACHE_SO)
    assert run("a2query", "-m", "acme_auto", check=False)[0] != 0
    assert not os.path.lexists("/etc/apache2/mods-enabled/acme_auto.load")
    with open(APACHE_SITE) as f:
        assert f.read() == conf
    # purge asked to remove the store too (README "Install")
    dpkg("--purge", APACHE_PKG, env={"ACME_PURGE_STORE": "yes"})
    assert not os.path.exists(APACHE_STORE)
    # and the copies for mod_ssl below DefaultRuntimeDir (root only) go
    assert not os.path.exists("/run/apache2/acme_auto")
    run("a2dissite", "-q", "acme-pkg-test")
    os.unlink(APACHE_SITE)
    assert not installed(APACHE_PKG)

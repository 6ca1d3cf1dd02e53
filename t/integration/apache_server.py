"""A throw-away Apache httpd (Debian's /usr/sbin/apache2 + mod_acme_auto) in a
directory of its own.

    srv = ApacheServer(dir, mpm="event")
    srv.write_conf(BODY, CA=pebble.ca_pem, STATE=state_dir)  # @NAME@ substituted
    rc, out = srv.test_config()        # apache2 -t (writes nothing)
    srv.start(ports=(5002, 8443))      # -D FOREGROUND; Popen pid = parent pid
    srv.child_pids(); srv.graceful(); srv.stop()

The configuration is MAIN_TEMPLATE (modules from /usr/lib/apache2/modules,
PidFile, "Mutex file:" and DefaultRuntimeDir in the server's own dir,
User/Group www-data as in production) followed by the caller's text.  The
server dir is 0755 so the www-data children can reach the state dirs below
it.  Listeners are on 127.0.0.1 only: HTTP on pebble's httpPort (5002) and HTTPS
on 8443, both shifted by ACME_TEST_PORT_OFFSET like pebble.py's ports.  Every wait is bounded; stop() sends
TERM, waits, then KILLs the process group, so no server outlives a test.

    apache_factory     pytest fixture: apache_factory(name="apache", **opts)
"""

import os
import signal
import subprocess
import time

try:
    import pytest
except ImportError:     # demo.py runs without pytest too
    pytest = None

from pebble import HTTP_PORT, PORT_OFFSET   # http-01 goes to pebble's httpPort

from serverlib import ServerLogs, port_open, sanitizer_env, status_cert, substitute  # noqa: F401 (re-exported)

HTTPS_PORT = 8443 + PORT_OFFSET

APACHE = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# ACME_APACHE_MODULE / ACME_APACHE_LD_PRELOAD: run the tests on another build
# of the module, e.g. an AddressSanitizer one with libasan preloaded
# (serverlib.sanitizer_env; README "Testing under AddressSanitizer").
MODULE = os.environ.get("ACME_APACHE_MODULE") or \
    os.path.join(REPO, "build", "apache", "mod_acme_auto.so")

MPM_CONF = {
    "event": """\
LoadModule mpm_event_module @MODDIR@/mod_mpm_event.so
StartServers @CHILDREN@
ServerLimit 8
ThreadsPerChild 16
MinSpareThreads 16
MaxSpareThreads 128
MaxRequestWorkers 64
""",
    "worker": """\
LoadModule mpm_worker_module @MODDIR@/mod_mpm_worker.so
StartServers @CHILDREN@
ServerLimit 8
ThreadsPerChild 16
MinSpareThreads 16
MaxSpareThreads 128
MaxRequestWorkers 64
""",
    "prefork": """\
LoadModule mpm_prefork_module @MODDIR@/mod_mpm_prefork.so
StartServers @CHILDREN@
MinSpareServers @CHILDREN@
MaxSpareServers 8
ServerLimit 16
MaxRequestWorkers 16
""",
}

MAIN_TEMPLATE = """\
ServerRoot "@DIR@"
PidFile "@DIR@/run/httpd.pid"
DefaultRuntimeDir "@DIR@/run"
Mutex file:@DIR@/run default
ErrorLog "@DIR@/logs/error.log"
LogLevel @LOGLEVEL@
User @USER@
Group @GROUP@
ServerName localhost
Timeout 30
KeepAlive On
GracefulShutdownTimeout 5
@EXTRA_MAIN@
@MPM@
LoadModule authz_core_module @MODDIR@/mod_authz_core.so
LoadModule mime_module @MODDIR@/mod_mime.so
TypesConfig /etc/mime.types
LoadModule socache_shmcb_module @MODDIR@/mod_socache_shmcb.so
LoadModule ssl_module @MODDIR@/mod_ssl.so
@LOADMODULE@
SSLSessionCache "shmcb:@DIR@/run/ssl_scache(512000)"
DocumentRoot "@DIR@/htdocs"
<Directory "@DIR@/htdocs">
    Require all granted
</Directory>
Listen @LISTEN_HOST@:@HTTP_PORT@
Listen @LISTEN_HOST@:@HTTPS_PORT@

@BODY@
"""


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class ApacheServer(ServerLogs):
    def __init__(self, directory, mpm="event", children=2, user="www-data",
                 group="www-data", loglevel="info acme_auto:debug", module=MODULE,
                 http_port=HTTP_PORT, https_port=HTTPS_PORT):
        self.dir = os.path.abspath(directory)
        self.mpm = mpm
        self.children = children
        self.user = user
        self.group = group
        self.loglevel = loglevel
        self.module = module
        self.http_port = http_port
        self.https_port = https_port
        # Debian's default name, so "APACHE_CONFDIR=dir apachectl" finds it
        self.conf_path = os.path.join(self.dir, "apache2.conf")
        self.error_log_path = os.path.join(self.dir, "logs", "error.log")
        self.stderr_path = os.path.join(self.dir, "logs", "stderr.log")
        self.extra_env = {}     # e.g. an LD_PRELOAD shim (test_store_errors)
        self.listen_host = "127.0.0.1"  # the Listen lines' address (another
                                        # 127.0.0.x: a node of a fleet)
        self.proc = None
        self._stderr = None
        self._log_offset = 0
        for d in ("", "logs", "run", "htdocs"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(self.dir, "htdocs", "index.html"), "w") as f:
            f.write("hello from apache\n")

    # -- configuration ----------------------------------------------------
    def render(self, body, **values):
        v = {"MPM": MPM_CONF[self.mpm], "LOGLEVEL": self.loglevel,
             "USER": self.user, "GROUP": self.group,
             "HTTP_PORT": self.http_port, "HTTPS_PORT": self.https_port,
             "LISTEN_HOST": self.listen_host,
             "LOADMODULE": ("LoadModule acme_auto_module %s" % self.module)
             if self.module else "",
             "EXTRA_MAIN": os.environ.get("ACME_APACHE_EXTRA", "")}
        text = MAIN_TEMPLATE.replace("@BODY@", body)
        text = substitute(text, v)      # MPM text has placeholders too
        v.update(values)
        v.update({"DIR": self.dir, "MODDIR": MODDIR,
                  "CHILDREN": self.children})
        return substitute(text, v)

    def write_conf(self, body, **values):
        text = self.render(body, **values)
        with open(self.conf_path, "w") as f:
            f.write(text)
        return text

    def conf_line(self, needle):
        with open(self.conf_path) as f:
            for i, line in enumerate(f, 1):
                if needle in line:
                    return i
        raise ValueError("%r not in %s" % (needle, self.conf_path))

    def cmd(self, *args):
        return [APACHE, "-d", self.dir, "-f", self.conf_path] + list(args)

    def _env(self):
        return sanitizer_env("ACME_APACHE_LD_PRELOAD", self.asan_dir, self.extra_env)

    def test_config(self, timeout=60):
        """apache2 -t: (returncode, combined output)."""
        r = subprocess.run(self.cmd("-t"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           env=self._env())
        return r.returncode, r.stdout.decode(errors="replace")

    def apachectl_configtest(self, timeout=60):
        """Debian's "apachectl configtest" on this directory: (rc, output)."""
        env = self._env()
        env["APACHE_CONFDIR"] = self.dir
        r = subprocess.run(["/usr/sbin/apachectl", "configtest"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env)
        return r.returncode, r.stdout.decode(errors="replace")

    # -- processes --------------------------------------------------------
    def start(self, timeout=30, ports=None):
        assert not self.running(), "already running"
        if ports is None:
            ports = (self.http_port, self.https_port)
        self._stderr = open(self.stderr_path, "ab")
        self._log_offset = self._log_size()
        self.proc = subprocess.Popen(self.cmd("-D", "FOREGROUND"),
                                     stdout=self._stderr,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self._env(),
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("apache2 exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self.stderr_text()[-3000:],
                    self.error_log()[-3000:]))
            ok = len(self.child_pids()) >= self.children
            if ok:
                ok = all(port_open(p, self.listen_host) for p in ports)
            if ok:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("apache2 did not come up:\n"
                                   + self.error_log()[-3000:])
            time.sleep(0.05)

    @property
    def parent_pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def child_pids(self):
        if not self.running():
            return []
        r = subprocess.run(["ps", "--ppid", str(self.proc.pid), "-o", "pid="],
                           stdout=subprocess.PIPE, timeout=10)
        return sorted(int(x) for x in r.stdout.decode().split())

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def graceful(self, timeout=30):
        """SIGUSR1 (graceful restart); waits for a new generation of children."""
        old = set(self.child_pids())
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = set(self.child_pids()) - old
            if len(new) >= self.children and port_open(self.https_port,
                                                       self.listen_host):
                return sorted(new)
            time.sleep(0.1)
        raise RuntimeError("graceful restart did not start new children:\n"
                           + self.error_log()[-3000:])

    def stop(self, timeout=20):
        """TERM (Apache stops its children), bounded wait, then KILL the group."""
        if self.proc is None:
            return
        pid = self.proc.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                if sig == signal.SIGKILL:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        # children may outlive a killed parent for a moment
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.05)
        if _group_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        for port in (self.http_port, self.https_port):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and port_open(port):
                time.sleep(0.05)

    # -- logs -------------------------------------------------------------
    def installs(self):
        """{(pid, generation): count} from the children's "generation N
        installed in pid P" debug lines: each child parses each new
        certificate once, off the handshake path."""
        import re
        out = {}
        for m in re.finditer(r"generation (\d+) installed in pid (\d+)", self.error_log()):
            k = (int(m.group(2)), int(m.group(1)))
            out[k] = out.get(k, 0) + 1
        return out

    def installed(self):
        """{(certificate id, generation, pid)} of the same lines."""
        import re
        return {(cid, int(g), int(pid)) for cid, g, pid in re.findall(
            r"mod_acme_auto: (\S+): generation (\d+) installed in pid (\d+)", self.error_log())}

    def crashes(self):
        """Lines telling of crashed children or emergencies."""
        bad = ("exit signal", "[core:emerg]", "[acme_auto:emerg]",
               "[core:alert]", "AH00052")
        return [l for l in self.error_log().splitlines()
                if any(b in l for b in bad)]




def _tail(text, n=4000):
    return text[-n:] if len(text) > n else text


def _apache_factory(workdir, request):
    """apache_factory(name="apache", **ApacheServer options); stopped at the
    end of the test, logs printed when it failed."""
    servers = []

    def make(name="apache", **kw):
        s = ApacheServer(os.path.join(workdir, name), **kw)
        servers.append(s)
        return s

    yield make
    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed
                 for w in ("setup", "call"))
    for s in servers:
        s.stop()
        if failed:
            print("\n===== apache %s error.log (tail) =====\n%s"
                  % (s.dir, _tail(s.error_log())))
            st = s.stderr_text()
            if st.strip():
                print("===== apache stderr =====\n" + _tail(st, 2000))
    for s in servers:
        s.check_asan()


if pytest is not None:
    apache_factory = pytest.fixture(_apache_factory)


# -- a managed setup shared by the tests (and demo.py) ----------------------

ISSUER_TEMPLATE = """\
<AcmeIssuer pebble>
    AcmeDirectory @DIRURL@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
    AcmeStateDir @STATE@
@ISSUER_EXTRA@
</AcmeIssuer>
"""

MANAGED_TEMPLATE = ISSUER_TEMPLATE + """
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName @NAME@
@ALIASES@
    SSLEngine on
    AcmeCertificate pebble @CERT_ARGS@
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>

<VirtualHost 127.0.0.1:@HTTP_PORT@>
    ServerName @NAME@
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""


def managed_conf(pebble, state_dir, names=("a.example.test", "b.example.test"),
                 issuer_extra="", cert_args=""):
    """Body text: one issuer for pebble, one managed HTTPS vhost named
    names[0] with the rest as ServerAlias, and the plain HTTP vhost that
    pebble's http-01 validation reaches."""
    values = {
        "DIRURL": pebble.directory_url, "CA": pebble.ca_pem,
        "STATE": state_dir, "ISSUER_EXTRA": issuer_extra,
        "NAME": names[0], "CERT_ARGS": cert_args,
        "HTTP_PORT": HTTP_PORT, "HTTPS_PORT": HTTPS_PORT,
        "ALIASES": ("    ServerAlias %s" % " ".join(names[1:])) if len(names) > 1 else "",
    }
    return substitute(MANAGED_TEMPLATE, values)


def issuer_conf(pebble, state_dir, issuer_extra="", name="pebble"):
    """An <AcmeIssuer pebble> block (or of another name) for pebble (or
    anything with directory_url and ca_pem) with the store in state_dir."""
    text = substitute(ISSUER_TEMPLATE, {"DIRURL": pebble.directory_url, "CA": pebble.ca_pem,
                                        "STATE": state_dir, "ISSUER_EXTRA": issuer_extra})
    return text.replace("<AcmeIssuer pebble>", "<AcmeIssuer %s>" % name, 1)


def start_managed(srv, pebble, state_dir, **conf_kw):
    srv.write_conf(managed_conf(pebble, state_dir, **conf_kw))
    return srv.start()


def get_status(port=HTTP_PORT, host="a.example.test", timeout=5.0):
    from tlsutil import get_json
    return get_json("http://127.0.0.1:%d/acme-status" % port, host=host,
                    timeout=timeout)


# -- ./build.sh demo apache (called by t/integration/demo.py) ---------------
DEMO_BODY = """\
# one <AcmeIssuer> block per ACME CA
<AcmeIssuer pebble>
    AcmeDirectory @DIRURL@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
    AcmeStateDir @STATE@
</AcmeIssuer>

<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
    # no SSLCertificateFile needed
    AcmeCertificate pebble
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>

# http-01 challenges arrive here (pebble validates on port 5002)
<VirtualHost 127.0.0.1:@HTTP_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
</VirtualHost>
"""


def demo(work, pebble, root_file, no_wait, show, wait_for_ctrl_c):
    from tlsutil import wait_acme_cert
    srv = ApacheServer(os.path.join(work, "apache"), mpm="event", children=2)
    state = os.path.join(work, "state", "pebble")
    srv.write_conf(DEMO_BODY, DIRURL=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state)
    print("apache config: %s" % srv.conf_path)
    print("error log    : %s" % srv.error_log_path)
    rc, out = srv.test_config()
    if rc != 0:
        print(out)
        return 1
    try:
        srv.start()
        print("apache2 started (parent %d, children %s); waiting for the "
              "certificate..." % (srv.parent_pid, srv.child_pids()))
        cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 120,
                              proc_alive=srv.running)
        show(cert, root_file, "https://a.example.test:%d/acme-status" % HTTPS_PORT)
        print("store        : %s" % state)
        print("parent pid   : %d (unchanged: no restart)" % srv.parent_pid)
        if no_wait:
            return 0
        return wait_for_ctrl_c(srv.running)
    except Exception as e:
        if type(e).__name__ == "Stop":
            raise
        print("demo failed: %s" % e)
        print(srv.error_log()[-3000:])
        return 1
    finally:
        print("stopping apache2")
        srv.stop()

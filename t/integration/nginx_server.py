"""A throw-away nginx (Debian's /usr/sbin/nginx + our module) in a prefix dir.

    srv = NginxServer(prefix_dir)
    srv.write_conf(HTTP_BLOCK, CA=pebble.ca_pem)     # @CA@ etc. substituted
    rc, out = srv.test_config()                       # nginx -t
    srv.start(); srv.worker_pids(); srv.reload(); srv.stop()

The configuration is MAIN_TEMPLATE with the caller's text as the http{}
body.  Placeholders are @NAME@ (nginx uses both "$" and braces, so neither
str.format nor string.Template fits); @PREFIX@ and @MODULE@ are always set.

Permissions: workers run as www-data (Debian's default user), as in
production, so the module's "master creates the state dirs for the worker
user" path is exercised.  The prefix dir is chmod 0755 so that www-data can
traverse to the state dirs below it; pytest's own tmp dirs are 0700, which is
why the tests make their directories with make_world_traversable_tmpdir().
nginx runs in the foreground (daemon off) with a master process; the Popen
pid is the master pid.  Listeners are 127.0.0.1 only.
"""

import os
import signal
import subprocess
import tempfile
import time

from serverlib import ServerLogs, port_open, sanitizer_env, status_cert, substitute  # noqa: F401 (re-exported)

NGINX = "/usr/sbin/nginx"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# ACME_NGINX_MODULE / ACME_NGINX_LD_PRELOAD: run the tests on another build
# of the module, e.g. an AddressSanitizer one with libasan preloaded
# (serverlib.sanitizer_env; README "Testing under AddressSanitizer").
MODULE = os.environ.get("ACME_NGINX_MODULE") or \
    os.path.join(REPO, "build", "nginx", "ngx_http_acme_module.so")

MAIN_TEMPLATE = """\
user @USER@;
worker_processes @WORKERS@;
daemon off;
master_process on;
error_log @PREFIX@/logs/error.log @LOGLEVEL@;
pid @PREFIX@/logs/nginx.pid;
lock_file @PREFIX@/logs/nginx.lock;
load_module @MODULE@;
@MAIN_EXTRA@
events { worker_connections 512; }

http {
    access_log @PREFIX@/logs/access.log;
    client_body_temp_path @PREFIX@/tmp/body;
    proxy_temp_path @PREFIX@/tmp/proxy;
    fastcgi_temp_path @PREFIX@/tmp/fastcgi;
    uwsgi_temp_path @PREFIX@/tmp/uwsgi;
    scgi_temp_path @PREFIX@/tmp/scgi;
    default_type text/plain;

@HTTP@
}
"""


def make_world_traversable_tmpdir(prefix="ngx-acme-t-"):
    """A fresh directory under /tmp that www-data can traverse (0755)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


class NginxServer(ServerLogs):
    def __init__(self, prefix, workers=2, user="www-data", loglevel="info",
                 module=MODULE):
        self.prefix = os.path.abspath(prefix)
        self.workers = workers
        self.user = user
        self.loglevel = loglevel
        self.module = module
        self.conf_path = os.path.join(self.prefix, "nginx.conf")
        self.error_log_path = os.path.join(self.prefix, "logs", "error.log")
        self.stderr_path = os.path.join(self.prefix, "logs", "stderr.log")
        self.extra_env = {}     # e.g. an LD_PRELOAD shim (test_handshake_ctx)
        self.listen_host = "127.0.0.1"  # where start(ports=) looks (another
                                        # 127.0.0.x: test_fleet.py)
        self.proc = None
        self._stderr = None
        self._log_offset = 0
        for d in ("", "logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        os.chmod(self.prefix, 0o755)

    # -- configuration ----------------------------------------------------
    def render(self, http_body, main_extra="", **values):
        v = {"USER": self.user, "WORKERS": self.workers,
             "LOGLEVEL": self.loglevel, "MAIN_EXTRA": main_extra}
        text = MAIN_TEMPLATE.replace("@HTTP@", http_body)
        v.update(values)
        v["PREFIX"] = self.prefix
        v["MODULE"] = self.module
        if not self.module:
            text = text.replace("load_module @MODULE@;\n", "")
        return substitute(text, v)

    def write_conf(self, http_body, main_extra="", **values):
        """Writes nginx.conf; http_body is the text inside http{}."""
        text = self.render(http_body, main_extra, **values)
        with open(self.conf_path, "w") as f:
            f.write(text)
        return text

    def write_raw_conf(self, text, **values):
        """Writes a complete nginx.conf (placeholders substituted)."""
        values = dict(values, PREFIX=self.prefix, MODULE=self.module)
        text = substitute(text, values)
        with open(self.conf_path, "w") as f:
            f.write(text)
        return text

    def conf_line(self, needle):
        """1-based line number of the first line of nginx.conf containing needle."""
        with open(self.conf_path) as f:
            for i, line in enumerate(f, 1):
                if needle in line:
                    return i
        raise ValueError("%r not in %s" % (needle, self.conf_path))

    def cmd(self, *args):
        return [NGINX, "-p", self.prefix + "/", "-c", self.conf_path] + list(args)

    def _env(self):
        return sanitizer_env("ACME_NGINX_LD_PRELOAD", self.asan_dir, self.extra_env)

    def test_config(self, timeout=60):
        """nginx -t: (returncode, combined output)."""
        r = subprocess.run(self.cmd("-t"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           env=self._env())
        return r.returncode, r.stdout.decode(errors="replace")

    # -- processes --------------------------------------------------------
    def start(self, timeout=30, ports=(), wait_workers=True):
        """Starts the master in the foreground; waits for the pid file, the
        workers and (optionally) TCP ports on 127.0.0.1 to accept."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._stderr = open(self.stderr_path, "ab")
        self._log_offset = self._log_size()
        self.proc = subprocess.Popen(self.cmd(), stdout=self._stderr,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env=self._env(),
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self.stderr_text()[-3000:],
                    self.error_log()[-3000:]))
            ok = os.path.exists(os.path.join(self.prefix, "logs", "nginx.pid"))
            if ok and wait_workers:
                ok = len(self.worker_pids()) >= self.workers
            if ok:
                ok = all(port_open(p, self.listen_host) for p in ports)
            if ok:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not come up:\n" + self.error_log()[-3000:])
            time.sleep(0.05)

    @property
    def master_pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self):
        """PIDs of the master's worker processes (sorted)."""
        if not self.running():
            return []
        r = subprocess.run(["ps", "--ppid", str(self.proc.pid), "-o", "pid=,args="],
                           stdout=subprocess.PIPE, timeout=10)
        pids = []
        for line in r.stdout.decode().splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and "worker process" in parts[1] \
                    and "shutting down" not in parts[1]:
                pids.append(int(parts[0]))
        return sorted(pids)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def reload(self, timeout=30):
        """HUP; waits until a full new set of workers replaced the old."""
        old = set(self.worker_pids())
        self.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = set(self.worker_pids())
            if len(new - old) >= self.workers and not (new & old):
                return sorted(new)
            time.sleep(0.1)
        raise RuntimeError("reload did not replace workers:\n" + self.error_log()[-3000:])

    def stop(self, timeout=15):
        """QUIT (graceful) with a bounded wait, then TERM, then KILL."""
        if self.proc is None:
            return
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                if sig == signal.SIGKILL:
                    os.killpg(self.proc.pid, sig)   # stray workers too
                else:
                    os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        # workers may outlive a killed master for a moment
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(self.proc.pid):
            time.sleep(0.05)

    # -- logs -------------------------------------------------------------
    def alerts(self):
        """[alert]/[emerg]/[crit] lines and worker crashes from the error log."""
        bad = ("[alert]", "[emerg]", "[crit]", "exited on signal")
        return [l for l in self.error_log().splitlines() if any(b in l for b in bad)]


def _group_alive(pgid):
    """Any live (non-zombie) process in process group pgid?  Zombies are
    ignored: in some containers nobody reaps re-parented processes."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[0] = state, fields[2] = pgrp
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


from pebble import HTTP_PORT, PORT_OFFSET   # noqa: E402  (http-01 goes to 5002)

HTTPS_PORT = 8443 + PORT_OFFSET


def issuer_conf(pebble, state_path, issuer_extra="", name="pebble"):
    """An acme_issuer block for pebble (or anything with directory_url and
    ca_pem: ca_proxy.CaProxy) with the store at state_path."""
    return """
    acme_issuer %(name)s {
        uri %(uri)s;
        contact admin@example.test;
        state_path %(state)s;
        accept_terms_of_service;
        ssl_trusted_certificate %(ca)s;
        %(issuer_extra)s
    }
""" % {"name": name, "uri": pebble.directory_url if pebble else "https://127.0.0.1:14000/dir",
       "state": state_path, "ca": pebble.ca_pem if pebble else "/dev/null",
       "issuer_extra": issuer_extra}


def managed_http_conf(pebble, state_path, names="a.example.test b.example.test",
                      cert_args="", issuer_extra="", server_extra="",
                      http_extra="", status=True, https_port=HTTPS_PORT):
    """The http{} body of a typical managed setup: issuer "pebble", one
    HTTPS server with acme_certificate, the plain HTTP server on 5002 that
    answers http-01 (and /acme-status when status is set)."""
    status_loc = "location = /acme-status { acme_status; }" if status else ""
    return issuer_conf(pebble, state_path, issuer_extra) + """
    %(http_extra)s

    server {
        listen 127.0.0.1:%(https)d ssl;
        server_name %(names)s;
        acme_certificate pebble %(cert_args)s;
        %(status_loc)s
        location / { return 200 "hello from $server_name\\n"; }
        %(server_extra)s
    }

    server {
        listen 127.0.0.1:%(http)d;
        server_name %(names)s;
        %(status_loc)s
        location / { return 200 "plain http\\n"; }
    }
""" % {"server_extra": server_extra,
       "http_extra": http_extra, "names": names, "cert_args": cert_args,
       "status_loc": status_loc, "https": https_port, "http": HTTP_PORT}


def start_managed(srv, pebble, state_path, ports=(HTTPS_PORT, HTTP_PORT), **conf_kw):
    """Writes managed_http_conf(...) into srv and starts it."""
    srv.write_conf(managed_http_conf(pebble, state_path, **conf_kw))
    return srv.start(ports=ports)


def get_status(port=HTTP_PORT, path="/acme-status", host="a.example.test", timeout=5.0,
               addr="127.0.0.1"):
    """The parsed acme_status JSON document (of the server listening on addr)."""
    from tlsutil import get_json
    return get_json("http://%s:%d%s" % (addr, port, path), host=host, timeout=timeout)



"""A real etcd (Debian's etcd-server 3.4) on loopback for the shared-store
tests: one member, its data in the test's workdir, client URL on
CLIENT_PORT (plain HTTP, or HTTPS with a CA the fixture makes), stopped
and removed with the test.

    Etcd(workdir, tls=False).start() -> .endpoint, .ca_file, .stop(),
    .etcdctl(*args) (the client, for setting up users and auth)
"""

import os
import shutil
import signal
import subprocess
import time
import urllib.request

from pebble import PORT_OFFSET

CLIENT_PORT = 23790 + PORT_OFFSET
PEER_PORT = 23800 + PORT_OFFSET
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def _make_tls(d):
    """A CA and a server certificate for 127.0.0.1 / localhost."""
    def run(*a):
        subprocess.run(a, check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=etcd test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out",
        "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
        "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days",
        "2", "-extfile", "ext")


class Etcd:
    def __init__(self, workdir, tls=False, name="etcd"):
        self.dir = os.path.join(workdir, name)
        self.tls = tls
        self.proc = None
        self.log_path = os.path.join(self.dir, "etcd.log")
        scheme = "https" if tls else "http"
        self.endpoint = "%s://127.0.0.1:%d" % (scheme, CLIENT_PORT)
        self.ca_file = os.path.join(self.dir, "ca.pem") if tls else None

    def start(self, timeout=30):
        os.makedirs(self.dir, exist_ok=True)
        args = [ETCD, "--name", "t", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", self.endpoint,
                "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", "http://127.0.0.1:%d" % PEER_PORT,
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % PEER_PORT,
                "--initial-cluster", "t=http://127.0.0.1:%d" % PEER_PORT]
        if self.tls:
            _make_tls(self.dir)
            args += ["--cert-file", os.path.join(self.dir, "server.pem"),
                     "--key-file", os.path.join(self.dir, "server.key")]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited: %s" % self.tail())
            try:
                self.etcdctl("endpoint", "health", timeout=5)
                return self
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("etcd did not become healthy: %s" % self.tail())
            time.sleep(0.2)

    def etcdctl(self, *args, timeout=15, user=None):
        cmd = [ETCDCTL, "--endpoints", self.endpoint]
        if self.ca_file:
            cmd += ["--cacert", self.ca_file]
        if user:
            cmd += ["--user", user]
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.run(cmd + list(args), check=True, capture_output=True,
                              text=True, timeout=timeout, env=env).stdout

    def tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

"""Debian's BIND 9 (named) as a throw-away authoritative server on loopback.

    b = Bind9(workdir)            # zone example.test, TSIG key "acme-key"
    b.start()                     # tsig-keygen, config, zone, named -g; waits
    b.port                        # 8054 (+ ACME_TEST_PORT_OFFSET) or a spare one
    b.key_text                    # the key file as tsig-keygen wrote it
    b.dig("name", "TXT")          # ["value", ...] via dig +short, or None without dig
    b.stop()                      # TERM, then KILL; bounded

named runs in the foreground (-g) as root with everything (config, zone,
journal, session key, pid file) under its own directory, no control
channel, no recursion, listening on 127.0.0.1 only.  Every wait is bounded.
"""

import os
import shutil
import socket
import subprocess
import time

NAMED = "/usr/sbin/named"
TSIG_KEYGEN = "/usr/sbin/tsig-keygen"
PORT_OFFSET = int(os.environ.get("ACME_TEST_PORT_OFFSET", "0"))
DEFAULT_PORT = 8054 + PORT_OFFSET

ZONE_TEMPLATE = """$TTL 60
@   IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 60
@   IN NS  ns.{zone}.
ns  IN A   127.0.0.1
www IN A   127.0.0.1
"""

CONF_TEMPLATE = """include "{dir}/acme-key.conf";
options {{
    directory "{dir}";
    pid-file "{dir}/named.pid";
    session-keyfile "{dir}/session.key";
    managed-keys-directory "{dir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
}};
controls {{ }};
zone "{zone}" {{
    type primary;
    file "{dir}/{zone}.db";
    allow-update {{ key "{key}"; }};
}};
"""


def _port_free(port):
    """True when both UDP and TCP 127.0.0.1:port can be bound."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def spare_port(preferred=DEFAULT_PORT):
    if _port_free(preferred):
        return preferred
    for _ in range(20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if _port_free(port):
            return port
    raise RuntimeError("no spare port for named")


class Bind9:
    def __init__(self, workdir, zone="example.test", key_name="acme-key",
                 port=None):
        self.dir = os.path.join(workdir, "named")
        self.zone = zone
        self.key_name = key_name
        self.port = port or spare_port()
        self.proc = None
        self.key_text = None
        self.log_path = os.path.join(self.dir, "named.log")

    def prepare(self):
        os.makedirs(self.dir, exist_ok=True)
        r = subprocess.run([TSIG_KEYGEN, "-a", "hmac-sha256", self.key_name],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, check=True)
        self.key_text = r.stdout.decode()
        with open(os.path.join(self.dir, "acme-key.conf"), "w") as f:
            f.write(self.key_text)
        with open(os.path.join(self.dir, self.zone + ".db"), "w") as f:
            f.write(ZONE_TEMPLATE.format(zone=self.zone))
        with open(os.path.join(self.dir, "named.conf"), "w") as f:
            f.write(CONF_TEMPLATE.format(dir=self.dir, port=self.port,
                                         zone=self.zone, key=self.key_name))
        checkconf = shutil.which("named-checkconf")
        if checkconf:
            subprocess.run([checkconf, os.path.join(self.dir, "named.conf")],
                           timeout=30, check=True)

    def start(self, timeout=20.0):
        if self.key_text is None:
            self.prepare()
        cmd = [NAMED, "-g", "-n", "1", "-c", os.path.join(self.dir, "named.conf")]
        if os.geteuid() == 0:
            cmd[1:1] = ["-u", "root"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("named exited (%d):\n%s" % (
                    self.proc.returncode, self.log()[-3000:]))
            # "running" is logged once every zone is loaded and the
            # listeners are up
            if " running\n" in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("named did not start in %.0f s:\n%s" % (
            timeout, self.log()[-3000:]))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def dig(self, name, rtype="TXT"):
        """Values from dig +short (quotes removed), or None without dig."""
        dig = shutil.which("dig")
        if dig is None:
            return None
        r = subprocess.run([dig, "+short", "+norecurse", "+time=2", "+tries=2",
                            "@127.0.0.1", "-p", str(self.port), name, rtype],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            raise RuntimeError("dig failed (%d): %s" % (r.returncode, out))
        return [line.strip().strip('"') for line in out.splitlines()
                if line.strip()]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

"""Debian's pebble (ACME test CA) and pebble-challtestsrv (its DNS) on loopback.

Used by the integration tests of both servers and by ``./build.sh demo``:

    p = Pebble(workdir, validity=90, nonce_reject=0)
    p.start()            # certs + config, challtestsrv, pebble, waits for /dir
    p.directory_url      # https://127.0.0.1:14000/dir
    p.ca_pem             # CA of pebble's own HTTPS API (module: ssl_trusted_certificate)
    p.root_pem()         # issuing root (management /roots/0), changes at each pebble start
    Pebble(workdir, extra_env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    p.alternate_root_pem(1)  # the root of alternate chain 1 (/roots/1)
    p.stop_pebble(); p.start_pebble()   # CA down / up, DNS stays
    p.stop()

A second CA beside the first (its own API and management ports, its own
API certificate and issuing root, the first one's DNS):

    b = Pebble(workdir, name="pebble-b", port_shift=SECOND_SHIFT, dns=False)

Ports (docs/design.md): API 14000, management 15000, http-01 to port 5002 and
tls-alpn-01 to 5001 of the name, DNS 127.0.0.1:8053 (every A query -> 127.0.0.1,
no AAAA), challtestsrv management 127.0.0.1:8055; all shifted by the
environment variable ACME_TEST_PORT_OFFSET when set (default 0).  Everything binds 127.0.0.1
and every wait is bounded.
"""

import fcntl
import json
import os
import sys
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"

# ACME_TEST_PORT_OFFSET shifts every port (ours and the servers' under test)
# so that several people can run the suites on one machine at the same time.
PORT_OFFSET = int(os.environ.get("ACME_TEST_PORT_OFFSET", "0"))
API_PORT = 14000 + PORT_OFFSET
MGMT_PORT = 15000 + PORT_OFFSET
HTTP_PORT = 5002 + PORT_OFFSET
TLS_PORT = 5001 + PORT_OFFSET
DNS_PORT = 8053 + PORT_OFFSET
# a name of pebble's API known only to pebble-challtestsrv's DNS (not
# /etc/hosts): a client resolving it at run time, through "resolver"
CA_RUNTIME_NAME = "ca.pebble.test"
CHALL_MGMT_PORT = 8055 + PORT_OFFSET
# a second pebble's API and management ports are these + SECOND_SHIFT
# (ca_proxy.py uses API_PORT + 10)
SECOND_SHIFT = 20


_port_lock_fd = None


def hold_port_lock(timeout=None):
    """Takes (once per process, held until it exits) an exclusive lock for
    this port offset, so that two runs on one machine (two engineers, a test
    run and the demo) wait for each other instead of colliding on ports.
    Waits at most timeout seconds (ACME_TEST_LOCK_WAIT, default 1200)."""
    global _port_lock_fd
    if _port_lock_fd is not None:
        return
    if timeout is None:
        timeout = float(os.environ.get("ACME_TEST_LOCK_WAIT", "1200"))
    # ports are per network namespace: runs under "unshare -n" (each with its
    # own loopback) do not wait for each other
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = 0
    path = "/tmp/ngx-acme-test-ports-%d-%d.lock" % (netns, PORT_OFFSET)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError("%s held by another run for %ss; set "
                                   "ACME_TEST_PORT_OFFSET to run beside it" % (path, timeout))
            if not told:
                print("waiting for %s (another run uses these ports; "
                      "ACME_TEST_PORT_OFFSET avoids that)" % path, file=sys.stderr, flush=True)
                told = True
            time.sleep(1)
    _port_lock_fd = fd


def _run(cmd, timeout=60):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (
            " ".join(cmd), r.returncode, r.stdout.decode(errors="replace")))
    return r.stdout


def port_open(port, host="127.0.0.1", timeout=0.5):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port_free(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_open(port):
            return True
        time.sleep(0.1)
    return False


def make_ca(directory, name="pebble-api-ca"):
    """A P-256 CA (key, cert) in directory; returns (key_path, cert_path)."""
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".pem")
    _run(["openssl", "req", "-x509", "-newkey", "ec",
          "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", key, "-out", crt, "-days", "30",
          "-subj", "/CN=ngx_acme test CA for pebble's API",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return key, crt


def make_leaf(directory, ca_key, ca_crt, name, sans, cn=None, key_type="ecdsa:256"):
    """A leaf signed by the CA; sans like ["DNS:localhost", "IP:127.0.0.1"];
    key_type "ecdsa:256" (P-256) or "rsa:BITS"."""
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    crt = os.path.join(directory, name + ".pem")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=%s\n" % ",".join(sans))
    if key_type.startswith("rsa:"):
        newkey = ["rsa:" + key_type.split(":")[1]]
    else:
        assert key_type == "ecdsa:256", key_type
        newkey = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    _run(["openssl", "req", "-new", "-newkey"] + newkey + ["-nodes",
          "-keyout", key, "-out", csr, "-subj", "/CN=%s" % (cn or name)])
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt,
          "-CAkey", ca_key, "-CAcreateserial", "-days", "30",
          "-extfile", ext, "-out", crt])
    return key, crt


class Pebble:
    def __init__(self, workdir, validity=0, nonce_reject=None, authz_reuse=None,
                 eab_keys=None, eab_required=False, always_valid=False,
                 chain_length=None, va_nosleep=True, extra_env=None,
                 dns_server=None, name="pebble", port_shift=0, dns=True,
                 http_port=None):
        """validity: certificateValidityPeriod in seconds (0 = pebble's 5 years).
        nonce_reject: PEBBLE_WFE_NONCEREJECT percent (None = pebble's 5).
        authz_reuse: PEBBLE_AUTHZREUSE percent (None = pebble's 50).
        eab_keys: {kid: base64url HMAC key}; eab_required: externalAccountBindingRequired.
        va_nosleep: False keeps pebble's random 0-15 s sleep before each validation
        (lets a test catch an order in flight).
        dns_server: "HOST:PORT" for pebble's -dnsserver (e.g. a Bind9 harness,
        "127.0.0.1:%d" % bind.port) instead of pebble-challtestsrv; pebble's VA
        then resolves names and dns-01 TXT records there.  challtestsrv still runs.
        name: the directory below workdir (another CA: another name);
        port_shift: added to the API and management ports (a second CA:
        SECOND_SHIFT); dns: False uses the pebble-challtestsrv another
        Pebble of the test started (start() starts none).
        http_port: the port http-01 is validated on (httpPort) instead of
        HTTP_PORT, e.g. 80 as a real CA (test_packages.py)."""
        self.workdir = os.path.abspath(workdir)
        self.validity = int(validity)
        self.nonce_reject = nonce_reject
        self.authz_reuse = authz_reuse
        self.eab_keys = dict(eab_keys or {})
        self.eab_required = bool(eab_required)
        self.always_valid = always_valid
        self.va_nosleep = va_nosleep
        self.chain_length = chain_length
        self.extra_env = dict(extra_env or {})
        self.dns_server = dns_server

        self.dns = dns
        self.http_port = http_port or HTTP_PORT
        self.api_port = API_PORT + int(port_shift)
        self.mgmt_port = MGMT_PORT + int(port_shift)
        self.dir = os.path.join(self.workdir, name)
        self.config_path = os.path.join(self.dir, "pebble-config.json")
        self.ca_pem = os.path.join(self.dir, "pebble-ca.pem")
        self.pebble_log = os.path.join(self.dir, "pebble.log")
        self.chall_log = os.path.join(self.dir, "challtestsrv.log")
        self.directory_url = "https://127.0.0.1:%d/dir" % self.api_port
        self.mgmt_url = "https://127.0.0.1:%d" % self.mgmt_port

        self._pebble = None
        self._chall = None
        self._pebble_logf = None
        self._chall_logf = None
        self._root = None
        self._prepared = False

    # -- files ------------------------------------------------------------
    def prepare(self):
        """CA + API certificate + JSON config (idempotent)."""
        if self._prepared:
            return
        os.makedirs(self.dir, exist_ok=True)
        ca_key, ca_crt = make_ca(self.dir)
        os.replace(ca_crt, self.ca_pem)
        key, crt = make_leaf(self.dir, ca_key, self.ca_pem, "pebble-api",
                             ["DNS:localhost", "DNS:%s" % CA_RUNTIME_NAME, "IP:127.0.0.1"], cn="localhost")
        cfg = {
            "listenAddress": "127.0.0.1:%d" % self.api_port,
            "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
            "certificate": crt,
            "privateKey": key,
            "httpPort": self.http_port,
            "tlsPort": TLS_PORT,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.eab_required,
            "certificateValidityPeriod": self.validity,
        }
        if self.eab_keys:
            cfg["externalAccountMACKeys"] = self.eab_keys
        with open(self.config_path, "w") as f:
            json.dump({"pebble": cfg}, f, indent=2)
        self._prepared = True

    def env(self):
        env = dict(os.environ)
        env.pop("PEBBLE_VA_NOSLEEP", None)
        if self.va_nosleep:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        if self.nonce_reject is not None:
            env["PEBBLE_WFE_NONCEREJECT"] = str(int(self.nonce_reject))
        if self.authz_reuse is not None:
            env["PEBBLE_AUTHZREUSE"] = str(int(self.authz_reuse))
        if self.always_valid:
            env["PEBBLE_VA_ALWAYS_VALID"] = "1"
        if self.chain_length is not None:
            env["PEBBLE_CHAIN_LENGTH"] = str(int(self.chain_length))
        env.update(self.extra_env)
        return env

    # -- processes --------------------------------------------------------
    def start(self, timeout=30.0):
        hold_port_lock()
        self.prepare()
        if self.dns:
            self.start_dns(timeout)
        self.start_pebble(timeout)
        return self

    def start_dns(self, timeout=30.0):
        hold_port_lock()
        if self._chall is not None and self._chall.poll() is None:
            return
        for port in (DNS_PORT, CHALL_MGMT_PORT):
            if not wait_port_free(port, 10):
                raise RuntimeError("port %d busy (leftover challtestsrv, or another run: "
                                   "set ACME_TEST_PORT_OFFSET)" % port)
        self._chall_logf = open(self.chall_log, "ab")
        self._chall = subprocess.Popen(
            [CHALLTESTSRV,
             "-dns01", "127.0.0.1:%d" % DNS_PORT,
             "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", "127.0.0.1:%d" % CHALL_MGMT_PORT,
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self._chall_logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_open(CHALL_MGMT_PORT):
            if self._chall.poll() is not None:
                raise RuntimeError("pebble-challtestsrv exited: %s" % self._tail(self.chall_log))
            if time.monotonic() > deadline:
                raise RuntimeError("pebble-challtestsrv did not come up")
            time.sleep(0.05)

    def start_pebble(self, timeout=30.0):
        """Starts pebble (again); each start has a fresh issuing root."""
        hold_port_lock()
        if self._pebble is not None and self._pebble.poll() is None:
            return
        self.prepare()
        for port in (self.api_port, self.mgmt_port):
            if not wait_port_free(port, 10):
                raise RuntimeError("port %d busy (leftover pebble, or another run: "
                                   "set ACME_TEST_PORT_OFFSET)" % port)
        self._root = None
        self._pebble_logf = open(self.pebble_log, "ab")
        self._pebble = subprocess.Popen(
            [PEBBLE, "-config", self.config_path,
             "-dnsserver", self.dns_server or "127.0.0.1:%d" % DNS_PORT],
            stdout=self._pebble_logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self.env(), cwd=self.dir,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self._pebble.poll() is not None:
                raise RuntimeError("pebble exited: %s" % self._tail(self.pebble_log))
            try:
                d = json.loads(self._get(self.directory_url, timeout=2))
                if "newOrder" in d:
                    break
            except Exception as e:  # not up yet
                last = e
            if time.monotonic() > deadline:
                raise RuntimeError("pebble /dir did not answer: %r" % (last,))
            time.sleep(0.1)

    def stop_pebble(self, timeout=10.0):
        self._pebble = _stop(self._pebble, timeout)
        if self._pebble_logf:
            self._pebble_logf.close()
            self._pebble_logf = None
        wait_port_free(self.api_port, timeout)

    def stop_dns(self, timeout=10.0):
        self._chall = _stop(self._chall, timeout)
        if self._chall_logf:
            self._chall_logf.close()
            self._chall_logf = None

    def stop(self, timeout=10.0):
        self.stop_pebble(timeout)
        self.stop_dns(timeout)

    def running(self):
        return self._pebble is not None and self._pebble.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP helpers -----------------------------------------------------
    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_pem)

    def _get(self, url, timeout=5.0):
        with urllib.request.urlopen(url, context=self.ssl_context(),
                                    timeout=timeout) as r:
            return r.read().decode()

    def root_pem(self, timeout=10.0):
        """The issuing root of the running pebble (management /roots/0)."""
        if self._root is None:
            self._root = self._get(self.mgmt_url + "/roots/0", timeout)
        return self._root

    def alternate_root_pem(self, n, timeout=10.0):
        """Root n of PEBBLE_ALTERNATE_ROOTS (management /roots/n; 0 is the
        default chain's root): the top certificate of alternate chain n is
        issued by it (every chain has the same intermediate key and name)."""
        return self._get(self.mgmt_url + "/roots/%d" % n, timeout)

    def write_root(self, path):
        with open(path, "w") as f:
            f.write(self.root_pem())
        return path

    def intermediate_pem(self, timeout=10.0):
        return self._get(self.mgmt_url + "/intermediates/0", timeout)

    # -- logs -------------------------------------------------------------
    def log(self):
        try:
            with open(self.pebble_log, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def count_requests(self, path):
        """How many times pebble logged a request for path ("/order-plz",
        "/finalize-order/", "/nonce-plz", ...) since its log was created."""
        return sum(1 for line in self.log().splitlines()
                   if (" " + path) in line or ("POST " + path) in line)

    def orders_created(self):
        """Orders pebble created (a new-order request it refused, e.g. for a
        bad nonce, and the retry that follows make one)."""
        return sum(1 for line in self.log().splitlines() if "Added order" in line)

    def accounts_created(self):
        """Accounts pebble registered since its log was created (it logs
        "There are now N accounts in memory" once per new account)."""
        return sum(1 for line in self.log().splitlines()
                   if "accounts in memory" in line)

    def new_account(self, timeout=10.0):
        """Registers a fresh account (a new P-256 key) at the running pebble,
        the way any ACME client does; returns its URL."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        import base64

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        key = ec.generate_private_key(ec.SECP256R1())
        nums = key.public_key().public_numbers()
        jwk = {"crv": "P-256", "kty": "EC", "x": b64(nums.x.to_bytes(32, "big")),
               "y": b64(nums.y.to_bytes(32, "big"))}
        d = json.loads(self._get(self.directory_url, timeout))
        payload = b64(json.dumps({"termsOfServiceAgreed": True}).encode())
        # pebble refuses a share of nonces on purpose (badNonce): a few tries
        for attempt in range(10):
            req = urllib.request.Request(d["newNonce"], method="HEAD")
            with urllib.request.urlopen(req, context=self.ssl_context(),
                                        timeout=timeout) as r:
                nonce = r.headers["Replay-Nonce"]
            prot = b64(json.dumps({"alg": "ES256", "jwk": jwk, "nonce": nonce,
                                   "url": d["newAccount"]}).encode())
            r_, s_ = decode_dss_signature(key.sign(("%s.%s" % (prot, payload)).encode(),
                                                   ec.ECDSA(hashes.SHA256())))
            body = json.dumps({"protected": prot, "payload": payload,
                               "signature": b64(r_.to_bytes(32, "big")
                                                + s_.to_bytes(32, "big"))})
            req = urllib.request.Request(d["newAccount"], data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/jose+json"})
            try:
                with urllib.request.urlopen(req, context=self.ssl_context(),
                                            timeout=timeout) as r:
                    assert r.status == 201, r.status
                    return r.headers["Location"]
            except urllib.error.HTTPError as e:
                problem = e.read().decode(errors="replace")
                if "badNonce" not in problem or attempt == 9:
                    raise RuntimeError("newAccount: HTTP %d %s" % (e.code, problem))

    def issued_count(self):
        """Certificates issued (pebble logs one line per issuance)."""
        return sum(1 for line in self.log().splitlines()
                   if "Issued certificate serial" in line)

    def _tail(self, path, n=2000):
        try:
            with open(path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


def _stop(proc, timeout):
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return None

"""nginx and Apache: tls-alpn-01.  pebble validates by connecting to
<name>:tlsPort with ALPN "acme-tls/1"; the managed server / vhost listens
there (h2 on, behind a static default server / vhost with its own
certificate) and nothing listens on pebble's httpPort, so only tls-alpn-01
can succeed.  The certificate comes without a restart; ordinary clients on
the same port keep negotiating h2 / http/1.1 and get the issued
certificate, also when they offer acme-tls/1 among their protocols; a
challenge connection (acme-tls/1 alone) gets the RFC 8737 certificate
(TLS 1.2 and 1.3, either key type) and serves nothing; a handshake
offering only acme-tls/1 for a name with nothing pending fails."""

import json
import re
import select
import socket
import ssl
import subprocess
import threading
import urllib.request

import pytest
from cryptography import x509

from pebble import CHALL_MGMT_PORT, HTTP_PORT, PORT_OFFSET, TLS_PORT, make_ca, make_leaf, \
    port_open
from servers import HTTPS_PORT
from tlsutil import is_self_signed, sans, served_cert, wait_acme_cert, wait_for

NAMES = ["a.example.test", "b.example.test"]
ISSUE_TIMEOUT = 60
STATUS_PORT = HTTPS_PORT            # plain HTTP here: status only
OTHER_PORT = 8444 + PORT_OFFSET     # a second TLS port (two certificates)
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
PROXY_HOST = "127.0.0.2"
MIXED = ("acme-tls/1", "http/1.1")  # an ordinary client that also offers acme-tls/1

# Each server's syntax: @ISSUER@ (servers.issuer_block), @STATIC@ (the
# static default server / vhost, or nothing), @VERSIONS@ (TLS versions),
# @CERT_ARGS@; Apache's @PROTOCOLS@ (its Protocols line: nginx has no such
# directive, the acme-tls/1 protocol is the module's there).
NGINX_STATIC = """
    server {
        listen 127.0.0.1:@TLS@ ssl http2 default_server;
        server_name static.example.test;
        ssl_protocols @VERSIONS@;
        ssl_certificate @STATIC_CRT@;
        ssl_certificate_key @STATIC_KEY@;
        location / { return 200 "static\\n"; }
    }
"""

NGINX_MANAGED = """
    server {
        listen 127.0.0.1:@TLS@ ssl http2;
        server_name a.example.test b.example.test;
        acme_certificate pebble @CERT_ARGS@;
        ssl_protocols @VERSIONS@;
        location / { return 200 "hello from $server_name\\n"; }
    }
"""

NGINX_CONF = """
@ISSUER@
@STATIC@
@MANAGED@
    server {
        listen 127.0.0.1:@STATUS@;
        server_name a.example.test;
        location = /acme-status { acme_status; }
    }
"""

APACHE_STATIC = """
<VirtualHost 127.0.0.1:@TLS@>
    ServerName static.example.test
    SSLEngine on
    Protocols h2 http/1.1
    SSLProtocol @VERSIONS@
    SSLCertificateFile @STATIC_CRT@
    SSLCertificateKeyFile @STATIC_KEY@
</VirtualHost>
"""

APACHE_MANAGED = """
<VirtualHost 127.0.0.1:@TLS@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
@PROTOCOLS@
    SSLProtocol @VERSIONS@
    AcmeCertificate pebble @CERT_ARGS@
</VirtualHost>
"""

APACHE_CONF = """\
LoadModule http2_module @MODDIR@/mod_http2.so
@ISSUER@
@STATIC@
@MANAGED@
<VirtualHost 127.0.0.1:@STATUS@>
    ServerName a.example.test
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""

TEMPLATES = {"nginx": (NGINX_CONF, NGINX_STATIC, NGINX_MANAGED),
             "apache": (APACHE_CONF, APACHE_STATIC, APACHE_MANAGED)}
APACHE_PROTOCOLS = "    Protocols h2 http/1.1 acme-tls/1"
ALL_VERSIONS = ("TLSv1.2", "TLSv1.3")

# each server's log lines
LOG = {
    "nginx": dict(answering='answering tls-alpn-01 for "%s"',
                  made=r'tls-alpn-01 certificate for "(\S+)" made in worker process (\d+)',
                  refused='tls-alpn-01 handshake for "%s" refused',
                  started="starting an order", issued='" issued: serial',
                  failed="order failed"),
    "apache": dict(answering="answering tls-alpn-01 challenge for %s",
                   made=r"tls-alpn-01 certificate for (\S+) made in pid (\d+)",
                   refused="acme-tls/1 offered for %s, no pending tls-alpn-01 challenge",
                   started="ordering a certificate from", issued=": new certificate",
                   failed="attempt 1 failed"),
}
HELLO = {"nginx": b"hello from a.example.test", "apache": b"hello from apache"}


def tls_alpn_server(server, pebble, state_dir, workdir=None, challenge="tls-alpn-01",
                    cert_args="", versions=ALL_VERSIONS, protocols=APACHE_PROTOCOLS,
                    second=None):
    """server (servers.Nginx / Apache) configured for tls-alpn-01: the
    managed server / vhost on pebble's tlsPort, /acme-status on STATUS_PORT,
    nothing on pebble's httpPort.  workdir: with the static default server /
    vhost (its certificate made there).  challenge: the issuer's challenge
    types (None: the issuer's default; a list: one line each).  second: the acme_certificate /
    AcmeCertificate arguments of a second managed server / vhost for the same
    names on OTHER_PORT."""
    conf, static, managed = TEMPLATES[server.kind]
    server.use_ports(TLS_PORT, STATUS_PORT)
    if server.kind == "nginx":
        vers = " ".join(versions)
    else:
        vers = "-all " + " ".join("+" + v for v in versions)
    values = dict(TLS=TLS_PORT, STATUS=STATUS_PORT, VERSIONS=vers, PROTOCOLS=protocols)
    if workdir:
        ca_key, ca_crt = make_ca(workdir, "static-ca")
        key, crt = make_leaf(workdir, ca_key, ca_crt, "static", ["DNS:static.example.test"],
                             cn="static.example.test")
        values.update(STATIC_CRT=crt, STATIC_KEY=key)
    body = conf.replace("@STATIC@", static if workdir else "")
    body = body.replace("@MANAGED@", managed.replace("@CERT_ARGS@", cert_args))
    if second is not None:
        more = managed.replace("@TLS@", str(OTHER_PORT)).replace("@CERT_ARGS@", second)
        if server.kind == "apache":
            more = "Listen 127.0.0.1:%d\n" % OTHER_PORT + more
        body += more
    if isinstance(challenge, (list, tuple)):
        issuer = [{"challenge": c} for c in challenge]
    else:
        issuer = {"challenge": challenge} if challenge else None
    body = body.replace("@ISSUER@", server.issuer_block(pebble, state_dir, issuer))
    server.raw.write_conf(body, **values)
    return server


def _ctx(protos=None, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if protos:
        ctx.set_alpn_protocols(protos)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _alpn(port, sni, protos):
    """(selected ALPN protocol, leaf certificate) of one handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with _ctx(protos).wrap_socket(s, server_hostname=sni) as t:
            return (t.selected_alpn_protocol(),
                    x509.load_der_x509_certificate(t.getpeercert(binary_form=True)))


def _openssl_alpn(port, sni, alpn):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", sni, "-alpn", alpn],
                       input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=15)
    out = r.stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("ALPN protocol:"):
            return line.split(":", 1)[1].strip()
    return None


def _https_get(port, sni, protos=("http/1.1",)):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with _ctx(list(protos)).wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b"GET /index.html HTTP/1.1\r\nHost: " + sni.encode()
                      + b"\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
    return data


def _refused(port, sni, protos):
    """True when the handshake offering protos fails."""
    try:
        _alpn(port, sni, protos)
    except (ssl.SSLError, ConnectionError):
        return True
    return False


def _h2(server):
    """mod_http2 does no h2 on the prefork MPM."""
    return server.kind == "nginx" or server.raw.mpm != "prefork"


def _check_normal_clients(server, port, cert, static=True):
    """h2 and http/1.1 negotiation and the issued certificate on port; the
    static default server / vhost: its own certificate and protocols."""
    if _h2(server):
        assert _openssl_alpn(port, "a.example.test", "h2,http/1.1") == "h2"
        proto, leaf = _alpn(port, "b.example.test", ["h2", "http/1.1"])
        assert proto == "h2" and leaf.serial_number == cert.serial_number
    assert _openssl_alpn(port, "b.example.test", "http/1.1") == "http/1.1"
    proto, leaf = _alpn(port, "b.example.test", ["http/1.1"])
    assert proto == "http/1.1" and leaf.serial_number == cert.serial_number
    proto, leaf = _alpn(port, "a.example.test", None)
    assert proto is None and leaf.serial_number == cert.serial_number
    resp = _https_get(port, "a.example.test")
    assert resp.startswith(b"HTTP/1.1 200") and HELLO[server.kind] in resp, resp[:300]
    if static:
        proto, leaf = _alpn(port, "static.example.test", ["h2", "http/1.1"])
        assert proto == ("h2" if _h2(server) else "http/1.1")
        assert sans(leaf) == ["static.example.test"]
        if server.kind == "nginx":
            assert b"static" in _https_get(port, "static.example.test")


def _version(port, sni):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with _ctx().wrap_socket(s, server_hostname=sni) as t:
            return t.version()


def _valid(server):
    c = server.status_cert()
    return c if c["state"] == "valid" else None


# With TLS 1.2 OpenSSL runs the certificate callback before ALPN selection,
# with TLS 1.3 after it: both orders must work.  (The version is chosen on
# the default server's context, before SNI: both servers get it.)  Apache
# also on the prefork MPM (no h2 there).
ISSUANCE = [("nginx", "TLSv1.3"), ("nginx", "TLSv1.2"),
            ("apache", "TLSv1.3"), ("apache-prefork", "TLSv1.2")]


@pytest.mark.parametrize("server,version", ISSUANCE, indirect=["server"],
                         ids=["%s-%s" % p for p in ISSUANCE])
def test_tls_alpn_issuance(server, version, pebble, root_file, state_dir, workdir):
    tls_alpn_server(server, pebble, state_dir, workdir, versions=(version,))
    server.start()
    main_pid = server.main_pid
    assert not port_open(HTTP_PORT), "nothing may answer http-01 in this test"
    assert _version(TLS_PORT, "a.example.test") == version

    cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert sans(cert) == NAMES
    assert not is_self_signed(cert)
    # no restart of any kind
    assert server.main_pid == main_pid and server.running()
    assert server.generations() == 1

    log = server.error_log()
    for name in NAMES:
        assert LOG[server.kind]["answering"] % name in log, log[-3000:]
    # each worker / child makes a challenge certificate once, however often
    # the CA connects (pebble validates from several "perspectives")
    made = re.findall(LOG[server.kind]["made"], log)
    assert made and len(made) == len(set(made)), made
    assert log.count("answering tls-alpn-01") >= len(made)

    c = wait_for(lambda: _valid(server), 20, "state valid")
    assert c["last_error"] is None, c

    server.wait_installed()
    _check_normal_clients(server, TLS_PORT, cert)

    # acme-tls/1 alone with nothing pending, for a managed name and for the
    # static server: the handshake fails (nginx refuses it in its certificate
    # callback, and in nginx's ALPN callback for the static server; Apache
    # selects http/1.1, which the client did not offer, and the client
    # aborts).  acme-tls/1 among other protocols is an ordinary client's
    # (RFC 8737 section 4: acme-tls/1 is for validation only): both servers
    # go on with http/1.1 and the normal certificate, and serve the request.
    for sni in ("a.example.test", "b.example.test", "static.example.test"):
        assert _refused(TLS_PORT, sni, ["acme-tls/1"]), sni
    assert LOG[server.kind]["refused"] % "a.example.test" in server.error_log()
    for protos in (["acme-tls/1", "http/1.1"], ["http/1.1", "acme-tls/1"]):
        proto, leaf = _alpn(TLS_PORT, "a.example.test", protos)
        assert proto == "http/1.1" and leaf.serial_number == cert.serial_number, protos
        resp = _https_get(TLS_PORT, "b.example.test", protos)
        assert resp.startswith(b"HTTP/1.1 200") and HELLO[server.kind] in resp, resp[:300]

    # and normal handshakes are fine after those
    assert served_cert(TLS_PORT, "a.example.test", cafile=root_file).serial_number \
        == cert.serial_number
    assert not server.problems(), server.problems()


class ProbingProxy:
    """pebble's validation connects here (its DNS points the names at
    PROXY_HOST); before forwarding each connection to the server, we make
    our own acme-tls/1 handshakes (TLS 1.2 and 1.3) for every name, plus
    one for a name without a challenge: a challenge is pending for at least
    the name being validated, with no timing involved."""

    def __init__(self, names, other="c.example.test"):
        self.names = names
        self.other = other
        self.results = []       # (name, version, alpn, cert, bytes after a request)
        self.mixed = []         # (name, version, alpn, cert): acme-tls/1 among others
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PROXY_HOST, TLS_PORT))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.sock.close()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _probe(name, version, protos=("acme-tls/1",)):
        """One handshake offering protos: (ALPN, leaf, whatever the server
        sends after an HTTP request on an acme-tls/1 connection: b"" when it
        closed; no request on any other)."""
        with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5) as s:
            with _ctx(list(protos), version).wrap_socket(s, server_hostname=name) as t:
                alpn = t.selected_alpn_protocol()
                cert = x509.load_der_x509_certificate(t.getpeercert(binary_form=True))
                data = b""
                if alpn != "acme-tls/1":
                    return alpn, cert, data
                try:
                    t.sendall(b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n")
                    for _ in range(100):
                        chunk = t.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except (ssl.SSLError, OSError):
                    pass
                return alpn, cert, data

    def _handle(self, conn):
        try:
            for name in self.names + [self.other]:
                for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                    try:
                        alpn, cert, after = self._probe(name, version)
                        with self.lock:
                            self.results.append((name, version, alpn, cert, after))
                    except Exception as e:      # a refused acme-tls/1 handshake
                        with self.lock:
                            self.results.append((name, version, None, None, None))
                            self.errors.append(repr(e))
                    try:
                        alpn, cert, _ = self._probe(name, version, MIXED)
                        with self.lock:
                            self.mixed.append((name, version, alpn, cert))
                    except Exception as e:
                        with self.lock:
                            self.mixed.append((name, version, None, None))
                            self.errors.append(repr(e))
            up = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10)
            socks = [conn, up]
            for _ in range(1000):       # bounded: a validation is a few records
                r, _, _ = select.select(socks, [], [], 10)
                if not r:
                    break
                done = False
                for a in r:
                    try:
                        data = a.recv(65536)
                        if data:
                            (up if a is conn else conn).sendall(data)
                    except OSError:     # a reset by either side ends it
                        data = b""
                    if not data:
                        done = True
                        break
                if done:
                    break
            up.close()
        finally:
            conn.close()

    def challenge_answers(self, name, version, kind):
        """Probes of name / version that got acme-tls/1 with an RFC 8737
        certificate, and nothing served after it: nginx closes the
        connection, Apache answers a request with a 503 (nothing of the
        site)."""
        out = []
        with self.lock:
            for n, v, alpn, cert, after in self.results:
                if n != name or v != version or alpn != "acme-tls/1":
                    continue
                assert is_self_signed(cert)
                assert sans(cert) == [name]
                ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER)
                assert ext.critical
                # DER OCTET STRING of a SHA-256 digest
                assert ext.value.value[:2] == b"\x04\x20" and len(ext.value.value) == 34
                if kind == "nginx":
                    assert after == b"", after[:200]
                else:
                    assert after == b"" or after.startswith(b"HTTP/1.1 503 "), after[:200]
                assert HELLO[kind] not in after, after
                out.append(cert)
        return out

    def check_all_answered(self, kind):
        """Every name got the RFC 8737 certificate over TLS 1.2 and 1.3."""
        for name in self.names:
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                assert self.challenge_answers(name, version, kind), \
                    (name, version, self.results, self.errors)

    def mixed_results(self, name):
        with self.lock:
            return [r for r in self.mixed if r[0] == name]

    def other_results(self):
        with self.lock:
            return [r for r in self.results if r[0] == self.other]


def _point_names_at(names, address):
    for n in names:
        req = urllib.request.Request(
            "http://127.0.0.1:%d/add-a" % CHALL_MGMT_PORT,
            data=json.dumps({"host": n + ".", "addresses": [address]}).encode(),
            method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200


# Apache with either key type (the certificate the challenge connection
# replaces), nginx with one: the file stays within the time of the two
# per-server files it replaced.
CHALLENGE = [("nginx", "ecdsa:256"), ("apache", "ecdsa:256"), ("apache", "rsa:2048")]


@pytest.mark.parametrize("server,key", CHALLENGE, indirect=["server"],
                         ids=["%s-%s" % p for p in CHALLENGE])
def test_tls_alpn_challenge_answer(server, key, pebble, root_file, state_dir, workdir):
    """Per-certificate challenge=tls-alpn-01 (the issuer's default is
    http-01); while pebble's validation connection waits in a proxy we
    connect like the CA: the RFC 8737 certificate over TLS 1.2 and 1.3,
    nothing served after it; no challenge certificate for a name with
    nothing pending."""
    proxy = ProbingProxy(NAMES)
    try:
        _point_names_at(NAMES, PROXY_HOST)
        tls_alpn_server(server, pebble, state_dir, workdir, challenge=None,
                        cert_args="key=%s challenge=tls-alpn-01" % key)
        server.start()
        cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                              proc_alive=server.running)
        assert sans(cert) == NAMES
        proxy.check_all_answered(server.kind)
        # acme-tls/1 among other protocols while the name's challenge is
        # pending: an ordinary handshake (http/1.1, no RFC 8737 certificate)
        for name in NAMES:
            mixed = proxy.mixed_results(name)
            assert mixed, (name, proxy.errors)
            for _, _, alpn, c in mixed:
                assert alpn == "http/1.1" and c is not None, (mixed, proxy.errors)
                assert ACME_IDENTIFIER not in [e.oid for e in c.extensions], mixed
        # refused (see test_tls_alpn_issuance)
        other = proxy.other_results()
        assert other and all(alpn is None and c is None for _, _, alpn, c, _ in other), other
        if server.kind == "nginx":     # Apache's: test_tls_alpn_issuance (time)
            _check_normal_clients(server, TLS_PORT, cert)
        assert not server.problems(), server.problems()
    finally:
        proxy.close()


def test_tls_alpn_orders_for_the_same_names_take_turns(server, pebble_factory, state_dir,
                                                       workdir):
    """An ECDSA and an RSA certificate for the same names: one handshake can
    present one challenge certificate per name, so the orders run one after
    the other (fresh authorizations: no reuse) and both succeed, without a
    failed attempt."""
    pebble = pebble_factory(authz_reuse=0)
    root_file = pebble.write_root(workdir + "/root.pem")
    tls_alpn_server(server, pebble, state_dir, second="key=rsa:2048")
    server.start(ports=(TLS_PORT, OTHER_PORT, STATUS_PORT))
    ec = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                        proc_alive=server.running)
    rsa = wait_acme_cert(OTHER_PORT, "b.example.test", root_file, ISSUE_TIMEOUT,
                         proc_alive=server.running)
    assert sans(ec) == NAMES and sans(rsa) == NAMES
    assert ec.serial_number != rsa.serial_number

    def both_valid():
        certs = server.status()["certificates"]
        return len(certs) == 2 and all(c["state"] == "valid" for c in certs) and certs
    certs = wait_for(both_valid, ISSUE_TIMEOUT, "both certificates issued")
    assert sorted(c["key_type"] for c in certs) == ["ecdsa:256", "rsa:2048"]
    assert all(c["consecutive_failures"] == 0 for c in certs), certs

    log = server.error_log()
    words = LOG[server.kind]
    assert words["failed"] not in log, log[-3000:]
    lines = log.splitlines()
    starts = [i for i, l in enumerate(lines) if words["started"] in l]
    issued = [i for i, l in enumerate(lines) if words["issued"] in l]
    assert len(starts) == 2 and len(issued) == 2, log[-3000:]
    assert issued[0] < starts[1], log[-3000:]
    assert not server.problems(), server.problems()


# case -> (tls_alpn_server() options, {server kind: (words the error must
# contain, the text of the line it must name)}); a kind missing: that server
# has no such mistake (nginx has no Protocols directive; Apache takes two
# AcmeChallenge lines, the last one counts)
CONFIG_CASES = {
    "issuer-dns01-without-dns": (dict(challenge="dns-01"), {
        "nginx": (["challenge", "dns-01", "dns_update", "dns_hook"], "dns-01"),
        "apache": (["AcmeChallenge dns-01", "AcmeDNSUpdate", "AcmeDNSHook"],
                   "<AcmeIssuer pebble>")}),
    "certificate-bogus": (dict(challenge=None, cert_args="challenge=bogus"), {
        "nginx": (["acme_certificate", "challenge=bogus"], "challenge=bogus"),
        "apache": (["AcmeCertificate", "challenge=bogus"], "challenge=bogus")}),
    "unknown-challenge": (dict(challenge="dns-02"), {
        "nginx": (["challenge", "dns-02", "http-01, tls-alpn-01 or dns-01"], "dns-02"),
        "apache": (["AcmeChallenge", "'dns-02'", "http-01, tls-alpn-01 or dns-01"],
                   "dns-02")}),
    "issuer-twice": (dict(challenge=["http-01", "tls-alpn-01"]), {
        "nginx": (["duplicate"], "challenge tls-alpn-01")}),
    "no-acme-tls-protocol": (dict(protocols="    Protocols h2 http/1.1"), {
        "apache": (["AcmeChallenge tls-alpn-01", "acme-tls/1", "<AcmeIssuer pebble>"],
                   "AcmeCertificate")}),
    "no-protocols": (dict(protocols=""), {
        "apache": (["AcmeChallenge tls-alpn-01", "Protocols"], "AcmeCertificate")}),
}
CONFIG_PARAMS = [(kind, case) for case in CONFIG_CASES for kind in ("nginx", "apache")
                 if kind in CONFIG_CASES[case][1]]


def _reported_lines(out, conf):
    """nginx "in conf:N", Apache "(conf:N)" or "line N of conf"."""
    c = re.escape(conf)
    return [int(n) for n in re.findall(c + r":(\d+)", out)
            + re.findall(r"line (\d+) of " + c, out)]


@pytest.mark.parametrize("server,case", CONFIG_PARAMS, indirect=["server"],
                         ids=["%s-%s" % p for p in CONFIG_PARAMS])
def test_tls_alpn_config_errors(server, case, pebble_factory, state_dir):
    opts, kinds = CONFIG_CASES[case]
    words, needle = kinds[server.kind]
    tls_alpn_server(server, pebble_factory(start=False), state_dir, **opts)
    rc, out = server.test_config()
    assert rc != 0, out
    assert server.config_ok not in out, out
    for w in words:
        assert w in out, (w, out)
    if server.kind == "nginx":
        assert "[emerg]" in out, out
    assert server.conf_line(needle) in _reported_lines(out, server.raw.conf_path), \
        (server.conf_line(needle), out)


@pytest.mark.parametrize("challenge,cert_args", [("tls-alpn-01", ""),
                                                 ("http-01", "challenge=tls-alpn-01")])
def test_tls_alpn_config_ok(server, challenge, cert_args, pebble_factory, state_dir):
    tls_alpn_server(server, pebble_factory(start=False), state_dir, challenge=challenge,
                    cert_args=cert_args)
    rc, out = server.test_config()
    assert rc == 0, out

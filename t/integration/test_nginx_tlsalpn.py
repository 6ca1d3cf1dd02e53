"""nginx: tls-alpn-01.  pebble validates by connecting to <name>:tlsPort with
ALPN "acme-tls/1"; the managed server listens there ("ssl http2", behind a
static default server with its own certificate) and nothing listens on
pebble's httpPort, so only tls-alpn-01 can succeed.  Ordinary clients on the
same port keep negotiating h2 / http/1.1; a client offering acme-tls/1 for
a name with nothing pending fails the handshake; a challenge connection
gets the RFC 8737 certificate and serves nothing."""

import os
import re
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from nginx_server import HTTPS_PORT, get_status, status_cert
from pebble import HTTP_PORT, PORT_OFFSET, TLS_PORT, port_open
from tlsutil import is_self_signed, sans, served_cert, wait_acme_cert, wait_for

NAMES = ["a.example.test", "b.example.test"]
ISSUE_TIMEOUT = 60
STATUS_PORT = HTTPS_PORT            # plain HTTP here: status only
BEHIND_PORT = 8444 + PORT_OFFSET    # nginx's TLS port behind the holding proxy
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")

CONF = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
        @ISSUER_CHALLENGE@
    }

    server {
        listen 127.0.0.1:@TLS@ ssl http2 default_server;
        server_name static.example.test;
        @PROTOCOLS@
        ssl_certificate @STATIC_CRT@;
        ssl_certificate_key @STATIC_KEY@;
        location / { return 200 "static\\n"; }
    }

    server {
        listen 127.0.0.1:@TLS@ ssl http2;
        server_name a.example.test b.example.test;
        acme_certificate pebble @CERT_ARGS@;
        @PROTOCOLS@
        location / { return 200 "hello from $server_name\\n"; }
    }

    server {
        listen 127.0.0.1:@STATUS@;
        server_name a.example.test;
        location = /acme-status { acme_status; }
    }
"""


def _static_cert(workdir):
    key = os.path.join(workdir, "static.key")
    crt = os.path.join(workdir, "static.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=static.example.test",
                    "-addext", "subjectAltName=DNS:static.example.test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)
    return crt, key


def _server(nginx_factory, pebble, state_dir, workdir, tls_port=TLS_PORT,
            issuer_challenge="challenge tls-alpn-01;", cert_args="", protocols=""):
    crt, key = _static_cert(workdir)
    srv = nginx_factory()
    srv.write_conf(CONF, URI=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   ISSUER_CHALLENGE=issuer_challenge, CERT_ARGS=cert_args,
                   PROTOCOLS=protocols, STATIC_CRT=crt, STATIC_KEY=key,
                   TLS=tls_port, STATUS=STATUS_PORT)
    return srv


def _ctx(protos=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if protos:
        ctx.set_alpn_protocols(protos)
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
            t.sendall(b"GET / HTTP/1.1\r\nHost: " + sni.encode()
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


def _check_normal_clients(port, cert):
    """h2 and http/1.1 negotiation and the issued certificate on port."""
    assert _openssl_alpn(port, "a.example.test", "h2,http/1.1") == "h2"
    assert _openssl_alpn(port, "b.example.test", "http/1.1") == "http/1.1"
    proto, leaf = _alpn(port, "b.example.test", ["h2", "http/1.1"])
    assert proto == "h2" and leaf.serial_number == cert.serial_number
    proto, leaf = _alpn(port, "a.example.test", None)
    assert proto is None and leaf.serial_number == cert.serial_number
    resp = _https_get(port, "a.example.test")
    assert resp.startswith(b"HTTP/1.1 200") and b"hello from a.example.test" in resp, resp
    # the static default server: its own certificate and protocols
    proto, leaf = _alpn(port, "static.example.test", ["h2", "http/1.1"])
    assert proto == "h2" and sans(leaf) == ["static.example.test"]
    assert b"static" in _https_get(port, "static.example.test")


def _version(port, sni):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with _ctx().wrap_socket(s, server_hostname=sni) as t:
            return t.version()


# With TLS 1.2 OpenSSL runs the cert callback before ALPN selection, with
# TLS 1.3 after it: both orders must work.  (The version is chosen on the
# default server's context, before SNI: both servers get ssl_protocols.)
@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_tls_alpn_issuance(version, nginx_factory, pebble, root_file, state_dir,
                           workdir):
    srv = _server(nginx_factory, pebble, state_dir, workdir,
                  protocols="ssl_protocols %s;" % version)
    srv.start(ports=(TLS_PORT, STATUS_PORT))
    assert not port_open(HTTP_PORT), "nothing may answer http-01 in this test"
    assert _version(TLS_PORT, "a.example.test") == version

    cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES
    assert not is_self_signed(cert)

    log = srv.error_log()
    for name in NAMES:
        assert 'answering tls-alpn-01 for "%s"' % name in log, log[-3000:]
    # each worker makes a challenge certificate once, however often the CA
    # connects (pebble validates from several "perspectives")
    made = re.findall(r'tls-alpn-01 certificate for "(\S+)" made in worker process (\d+)',
                      log)
    assert made and len(made) == len(set(made)), made
    assert log.count("answering tls-alpn-01") >= len(made)

    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        status_cert(get_status(port=STATUS_PORT))), 20, "state valid")
    assert c["last_error"] is None, c

    _check_normal_clients(TLS_PORT, cert)

    # acme-tls/1 with nothing pending: the handshake fails, for a managed
    # name (cert callback) and for the static server (nginx's ALPN callback)
    for sni in ("a.example.test", "b.example.test", "static.example.test"):
        assert _refused(TLS_PORT, sni, ["acme-tls/1"]), sni
    assert _refused(TLS_PORT, "a.example.test", ["acme-tls/1", "http/1.1"])
    assert 'tls-alpn-01 handshake for "a.example.test" refused' in srv.error_log()

    # and normal handshakes are fine after those
    assert served_cert(TLS_PORT, "a.example.test", cafile=root_file).serial_number \
        == cert.serial_number
    assert not srv.alerts(), srv.alerts()


class HoldingProxy:
    """TCP proxy 127.0.0.1:listen_port -> 127.0.0.1:target_port that holds
    every connection (reads nothing) until release(): a pebble validation
    arriving means its authorization is pending, and stays so meanwhile."""

    def __init__(self, listen_port, target_port, lifetime=90):
        self.target_port = target_port
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.closed = False
        self.deadline = time.monotonic() + lifetime
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed and time.monotonic() < self.deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.arrived.set()
            threading.Thread(target=self._pipe, args=(conn,), daemon=True).start()

    def _pipe(self, conn):
        with conn:
            if not self.released.wait(max(0, self.deadline - time.monotonic())):
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                return
            with up:
                peers = {conn: up, up: conn}
                while time.monotonic() < self.deadline:
                    r, _, _ = select.select(list(peers), [], [], 1.0)
                    for s in r:
                        try:
                            data = s.recv(65536)
                        except OSError:
                            data = b""
                        if not data:
                            return
                        peers[s].sendall(data)

    def release(self):
        self.released.set()

    def close(self):
        self.closed = True
        self.released.set()
        self.sock.close()


def _challenge_probe(port, sni):
    """One acme-tls/1 handshake: the leaf, then whatever the server sends
    after an HTTP request on that connection (b"" when it closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with _ctx(["acme-tls/1"]).wrap_socket(s, server_hostname=sni) as t:
            assert t.selected_alpn_protocol() == "acme-tls/1"
            leaf = x509.load_der_x509_certificate(t.getpeercert(binary_form=True))
            data = b""
            try:
                t.sendall(b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n\r\n")
                while True:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ssl.SSLError, OSError):
                pass
    return leaf, data


def test_tls_alpn_challenge_connection(nginx_factory, pebble, root_file, state_dir,
                                       workdir):
    """Per-certificate challenge=tls-alpn-01 (the issuer defaults to
    http-01); pebble's validation is held in a proxy while we connect like
    the CA: the RFC 8737 certificate, and nothing served after it."""
    proxy = HoldingProxy(TLS_PORT, BEHIND_PORT)
    try:
        srv = _server(nginx_factory, pebble, state_dir, workdir, tls_port=BEHIND_PORT,
                      issuer_challenge="", cert_args="challenge=tls-alpn-01")
        srv.start(ports=(BEHIND_PORT, STATUS_PORT))
        assert proxy.arrived.wait(ISSUE_TIMEOUT), "pebble never validated"

        answered = []
        for name in NAMES:
            try:
                leaf, after = _challenge_probe(BEHIND_PORT, name)
            except (ssl.SSLError, ConnectionError):
                continue        # not (yet) pending: pebble validates one at a time
            answered.append(name)
            assert after == b"", after[:200]
            assert is_self_signed(leaf)
            san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            assert san.value.get_values_for_type(x509.DNSName) == [name]
            ext = leaf.extensions.get_extension_for_oid(ACME_IDENTIFIER)
            assert ext.critical
            # DER OCTET STRING of a SHA-256 digest
            assert ext.value.value[:2] == b"\x04\x20" and len(ext.value.value) == 34
        assert answered, "no challenge answered while pebble's validation was held"
        # nothing pending for this one
        assert _refused(BEHIND_PORT, "c.example.test", ["acme-tls/1"])

        proxy.release()
        cert = wait_acme_cert(BEHIND_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                              proc_alive=srv.running)
        assert sans(cert) == NAMES
        _check_normal_clients(BEHIND_PORT, cert)
        assert not srv.alerts(), srv.alerts()
    finally:
        proxy.close()


# name -> (issuer's challenge line, acme_certificate arguments, words the
#          error must contain, the text of the line it must name)
CONFIG_ERRORS = {
    "issuer": ("challenge dns-01;", "", ["challenge", "dns-01"], "dns-01"),
    "certificate": ("", "challenge=bogus", ["acme_certificate", "challenge=bogus"],
                    "challenge=bogus"),
    "duplicate": ("challenge http-01; challenge tls-alpn-01;", "", ["duplicate"],
                  "challenge http-01"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_tls_alpn_config_errors(case, nginx_factory, pebble_factory, state_dir, workdir):
    issuer, cert_args, words, needle = CONFIG_ERRORS[case]
    pebble = pebble_factory(start=False)
    srv = _server(nginx_factory, pebble, state_dir, workdir, issuer_challenge=issuer,
                  cert_args=cert_args)
    rc, out = srv.test_config()
    assert rc != 0, out
    assert "[emerg]" in out, out
    for w in words:
        assert w in out, (w, out)
    assert "%s:%d" % (srv.conf_path, srv.conf_line(needle)) in out, out


def test_tls_alpn_config_ok(nginx_factory, pebble_factory, state_dir, workdir):
    pebble = pebble_factory(start=False)
    srv = _server(nginx_factory, pebble, state_dir, workdir,
                  issuer_challenge="challenge http-01;", cert_args="challenge=tls-alpn-01")
    rc, out = srv.test_config()
    assert rc == 0, out


TWO_CERTS = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
        challenge tls-alpn-01;
    }
    server {
        listen 127.0.0.1:@TLS@ ssl;
        server_name a.example.test b.example.test;
        acme_certificate pebble;
    }
    server {
        listen 127.0.0.1:@OTHER@ ssl;
        server_name a.example.test b.example.test;
        acme_certificate pebble key=rsa:2048;
    }
"""


def test_tls_alpn_orders_for_the_same_names_take_turns(nginx_factory, pebble_factory,
                                                       state_dir, workdir):
    """An ECDSA and an RSA certificate for the same names: one handshake can
    present one challenge certificate per name, so the orders run one after
    the other (fresh authorizations: no reuse) and both succeed."""
    pebble = pebble_factory(authz_reuse=0)
    root_file = pebble.write_root(os.path.join(workdir, "root.pem"))
    srv = nginx_factory()
    srv.write_conf(TWO_CERTS, URI=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state_dir, TLS=TLS_PORT, OTHER=BEHIND_PORT)
    srv.start(ports=(TLS_PORT, BEHIND_PORT))
    ec = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                        proc_alive=srv.running)
    rsa = wait_acme_cert(BEHIND_PORT, "b.example.test", root_file, ISSUE_TIMEOUT,
                         proc_alive=srv.running)
    assert sans(ec) == NAMES and sans(rsa) == NAMES
    assert ec.serial_number != rsa.serial_number
    log = srv.error_log()
    assert "order failed" not in log, log[-3000:]
    starts = [i for i, l in enumerate(log.splitlines()) if "starting an order" in l]
    issued = [i for i, l in enumerate(log.splitlines()) if '" issued: serial' in l]
    assert len(starts) == 2 and len(issued) == 2, log[-3000:]
    assert issued[0] < starts[1], log[-3000:]
    assert not srv.alerts(), srv.alerts()

"""Apache (mod_acme_auto): tls-alpn-01.  pebble validates by connecting to
<name>:tlsPort with ALPN "acme-tls/1"; the managed vhost listens there (no
HTTP listener on pebble's httpPort at all), gets its certificate without a
restart, and ordinary clients on the same port keep negotiating h2 /
http/1.1 and get the normal certificate."""

import re
import socket
import ssl

import pytest

from apache_server import HTTPS_PORT, apache_factory, get_status, status_cert  # noqa: F401
from pebble import HTTP_PORT, TLS_PORT, port_open
from tlsutil import is_self_signed, sans, wait_acme_cert

NAMES = ["a.example.test", "b.example.test"]
ISSUE_TIMEOUT = 60
# plain HTTP for the status handler: not pebble's httpPort
STATUS_PORT = HTTPS_PORT

BODY = """\
LoadModule http2_module @MODDIR@/mod_http2.so
<AcmeIssuer pebble>
    AcmeDirectory @DIRURL@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
    AcmeStateDir @STATE@
    AcmeChallenge @CHALLENGE@
</AcmeIssuer>

<VirtualHost 127.0.0.1:@TLS_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
@PROTOCOLS@
    AcmeCertificate pebble
</VirtualHost>

<VirtualHost 127.0.0.1:@STATUS_PORT@>
    ServerName a.example.test
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""


def _server(apache_factory, pebble, state_dir, challenge="tls-alpn-01",
            protocols="    Protocols h2 http/1.1 acme-tls/1", **kw):
    srv = apache_factory(https_port=TLS_PORT, http_port=STATUS_PORT, **kw)
    srv.write_conf(BODY, DIRURL=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state_dir, CHALLENGE=challenge, PROTOCOLS=protocols,
                   TLS_PORT=TLS_PORT, STATUS_PORT=STATUS_PORT)
    return srv


def _alpn(port, sni, protos):
    """(selected ALPN protocol, leaf DER) of one handshake offering protos."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(protos)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.selected_alpn_protocol(), t.getpeercert(binary_form=True)


def _https_get(port, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b"GET /index.html HTTP/1.1\r\nHost: " + sni.encode()
                      + b"\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
    return data


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_tls_alpn_issuance_without_restart(mpm, apache_factory, pebble, root_file,
                                           state_dir):
    srv = _server(apache_factory, pebble, state_dir, mpm=mpm)
    srv.start()
    parent = srv.parent_pid
    assert not port_open(HTTP_PORT), "nothing may answer http-01 in this test"

    cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES
    assert not is_self_signed(cert)
    assert srv.parent_pid == parent and srv.running()
    assert srv.error_log().count("resuming normal operations") == 1

    log = srv.error_log()
    for name in NAMES:
        assert "answering tls-alpn-01 challenge for %s" % name in log, log[-3000:]
    # the challenge certificate is made once per challenge in each child
    made = re.findall(r"tls-alpn-01 certificate for (\S+) made in pid (\d+)", log)
    assert made and len(made) == len(set(made)), made

    st = status_cert(get_status(port=STATUS_PORT))
    assert st["state"] == "valid" and st["last_error"] is None, st

    # ordinary clients on the same port: normal ALPN, the issued certificate
    if mpm == "event":      # mod_http2 does h2 on the event MPM only
        proto, der = _alpn(TLS_PORT, "a.example.test", ["h2", "http/1.1"])
        assert proto == "h2"
    proto, der = _alpn(TLS_PORT, "b.example.test", ["http/1.1"])
    assert proto == "http/1.1"
    assert ssl.DER_cert_to_PEM_cert(der) and der == \
        _alpn(TLS_PORT, "a.example.test", ["http/1.1"])[1]
    resp = _https_get(TLS_PORT, "a.example.test")
    assert resp.startswith(b"HTTP/1.1 200") and b"hello from apache" in resp, resp[:300]

    # acme-tls/1 offered with no pending challenge: not selected, normal cert
    proto, der2 = _alpn(TLS_PORT, "a.example.test", ["acme-tls/1", "http/1.1"])
    assert proto == "http/1.1"
    assert der2 == der
    assert not srv.crashes(), srv.crashes()


CONFIG_CASES = [
    ("no-acme-tls-protocol", {"protocols": "    Protocols h2 http/1.1"},
     ["AcmeChallenge tls-alpn-01", "acme-tls/1", "<AcmeIssuer pebble>"]),
    ("no-protocols", {"protocols": ""},
     ["AcmeChallenge tls-alpn-01", "Protocols"]),
    ("unknown-challenge", {"challenge": "dns-01"},
     ["AcmeChallenge", "'dns-01'", "http-01 or tls-alpn-01"]),
]


@pytest.mark.parametrize("case_id,kw,words", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_tls_alpn_config_errors(case_id, kw, words, apache_factory, pebble_factory,
                                state_dir):
    pebble = pebble_factory(start=False)
    srv = _server(apache_factory, pebble, state_dir, **kw)
    rc, out = srv.test_config()
    assert rc != 0, out
    for w in words:
        assert w in out, (w, out)


def test_tls_alpn_config_ok(apache_factory, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = _server(apache_factory, pebble, state_dir)
    rc, out = srv.test_config()
    assert rc == 0, out

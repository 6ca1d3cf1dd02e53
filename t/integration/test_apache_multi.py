"""Apache (mod_acme_auto), issue 4, on the tls-alpn-01 setup
(test_tlsalpn.tls_alpn_server): challenge lists with fallback and IP
identifiers over tls-alpn-01 (the tests both servers share are in
test_multi.py)."""

import servers
from apache_server import get_status, status_cert
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 60


def _ip_sans(cert):
    ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    return [str(a) for a in ext.value.get_values_for_type(x509.IPAddress)]


def test_challenge_list_falls_back(apache_factory, pebble, root_file, state_dir):
    """AcmeChallenge http-01 tls-alpn-01 with nothing on pebble's httpPort:
    the first attempt fails with an "http-01: ..." error, the next one
    (after the first backoff, about a minute) uses tls-alpn-01 and issues."""
    from test_tlsalpn import STATUS_PORT, tls_alpn_server
    from pebble import HTTP_PORT as PEBBLE_HTTP_PORT, TLS_PORT, port_open

    srv = tls_alpn_server(servers.make("apache", apache_factory=apache_factory), pebble,
                          state_dir, challenge="http-01 tls-alpn-01").raw
    srv.start()
    parent = srv.parent_pid
    assert not port_open(PEBBLE_HTTP_PORT), "nothing may answer http-01 in this test"

    def failed_once():
        c = status_cert(get_status(port=STATUS_PORT))
        return c if c["consecutive_failures"] >= 1 and c["last_error"] else None
    c = wait_for(failed_once, ISSUE_TIMEOUT, "the failed http-01 attempt")
    assert c["last_error"].startswith("http-01: "), c
    assert c["challenge"] == "http-01", c

    cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, 60 + 3 * ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert not is_self_signed(cert)
    assert sans(cert) == ["a.example.test", "b.example.test"]
    c = status_cert(get_status(port=STATUS_PORT))
    assert c["state"] == "valid" and c["challenge"] == "tls-alpn-01", c
    assert "answering tls-alpn-01 challenge for a.example.test" in srv.error_log()
    assert srv.parent_pid == parent and srv.running()
    assert not srv.crashes(), srv.crashes()


def test_ip_identifier_tls_alpn01(apache_factory, pebble, root_file, state_dir):
    """An IP identifier over tls-alpn-01: pebble sends the reverse-DNS name
    (1.0.0.127.in-addr.arpa) as SNI (RFC 8738 section 6)."""
    from test_tlsalpn import tls_alpn_server
    from pebble import TLS_PORT

    srv = tls_alpn_server(servers.make("apache", apache_factory=apache_factory), pebble,
                          state_dir, cert_args="127.0.0.1").raw
    srv.start()
    cert = wait_acme_cert(TLS_PORT, "127.0.0.1", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert _ip_sans(cert) == ["127.0.0.1"]
    assert "answering tls-alpn-01 challenge for 127.0.0.1" in srv.error_log()
    assert not srv.crashes(), srv.crashes()

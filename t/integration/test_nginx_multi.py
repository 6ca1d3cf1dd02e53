"""nginx, issue 4, on nginx's tls-alpn-01 setup: challenge lists with
fallback and IP identifiers over tls-alpn-01 (the tests both servers share
are in test_multi.py)."""

import subprocess

from cryptography import x509

from nginx_server import HTTPS_PORT, get_status
from pebble import TLS_PORT
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 90


def _s_client_leaf(port, sni, *args):
    """The leaf an openssl s_client handshake with args gets."""
    sni_args = ["-servername", sni] if sni else ["-noservername"]
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
                       + sni_args + list(args),
                       input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=15)
    out = r.stdout.decode(errors="replace")
    begin = out.find("-----BEGIN CERTIFICATE-----")
    end = out.find("-----END CERTIFICATE-----")
    assert begin >= 0 and end > begin, out[-2000:]
    pem = out[begin:end + len("-----END CERTIFICATE-----")] + "\n"
    return x509.load_pem_x509_certificate(pem.encode())


def _all_valid(n):
    certs = get_status()["certificates"]
    return len(certs) == n and all(c["state"] == "valid" for c in certs)


def _ip_sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]


FALLBACK_CONF = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
        challenge http-01 tls-alpn-01;
    }

    server {
        listen 127.0.0.1:@TLS@ ssl;
        server_name a.example.test;
        acme_certificate pebble;
        location / { return 200 "hello\\n"; }
    }

    server {
        listen 127.0.0.1:@STATUS@;
        server_name a.example.test;
        location = /acme-status { acme_status; }
    }
"""


def test_challenge_list_falls_back(nginx_factory, pebble, root_file, state_dir):
    """"challenge http-01 tls-alpn-01": nothing answers on pebble's httpPort,
    so the first attempt fails with http-01; the attempt after that failure
    (the first backoff, about a minute) uses tls-alpn-01 and succeeds."""
    srv = nginx_factory()
    srv.write_conf(FALLBACK_CONF, URI=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state_dir, TLS=TLS_PORT, STATUS=HTTPS_PORT)
    srv.start(ports=(TLS_PORT, HTTPS_PORT))

    def failed():
        c = get_status(port=HTTPS_PORT)["certificates"][0]
        return c if c["consecutive_failures"] >= 1 and c["last_error"] else None

    c = wait_for(failed, ISSUE_TIMEOUT, "the http-01 attempt to fail")
    assert c["last_error"].startswith("http-01: "), c
    assert c["challenge"] == "http-01", c
    assert "order failed: http-01: " in srv.error_log()

    leaf = wait_acme_cert(TLS_PORT, "a.example.test", root_file, 150,
                          proc_alive=srv.running)
    assert sans(leaf) == ["a.example.test"]
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        get_status(port=HTTPS_PORT)["certificates"][0]), 20, "state valid")
    assert c["challenge"] == "tls-alpn-01" and c["last_error"] is None, c
    assert c["consecutive_failures"] == 0, c
    assert not srv.alerts(), srv.alerts()


def test_ip_identifier_tls_alpn01(nginx_factory, pebble, state_dir):
    """tls-alpn-01 for an IP: pebble's SNI is the reverse-DNS name
    (1.0.0.127.in-addr.arpa); the managed server is the port's default."""
    srv = nginx_factory()
    conf = FALLBACK_CONF.replace("challenge http-01 tls-alpn-01;", "challenge tls-alpn-01;")
    conf = conf.replace("acme_certificate pebble;", "acme_certificate pebble 127.0.0.1;")
    srv.write_conf(conf, URI=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state_dir, TLS=TLS_PORT, STATUS=HTTPS_PORT)
    srv.start(ports=(TLS_PORT, HTTPS_PORT))
    wait_for(lambda: (lambda c: c["state"] == "valid")(
        get_status(port=HTTPS_PORT)["certificates"][0]), ISSUE_TIMEOUT, "state valid")
    leaf = _s_client_leaf(TLS_PORT, None)
    assert not is_self_signed(leaf) and _ip_sans(leaf) == ["127.0.0.1"], leaf
    c = get_status(port=HTTPS_PORT)["certificates"][0]
    assert c["challenge"] == "tls-alpn-01" and c["last_error"] is None, c
    assert not srv.alerts(), srv.alerts()

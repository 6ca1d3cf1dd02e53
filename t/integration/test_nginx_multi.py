"""nginx, issue 4: several certificates per server (an ECDSA and an RSA one
for the same names, the handshake picks by the client's signature
algorithms), IP identifiers (RFC 8738) and challenge lists with fallback."""

import subprocess

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nginx_server import HTTPS_PORT, get_status, managed_http_conf, start_managed
from pebble import HTTP_PORT, TLS_PORT
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


def test_ecdsa_and_rsa_certificates_in_one_server(nginx_factory, pebble, state_dir):
    srv = nginx_factory()
    start_managed(srv, pebble, state_dir, cert_args="key=ecdsa:256",
                  server_extra="acme_certificate pebble key=rsa:2048;\n"
                               "ssl_protocols TLSv1.2 TLSv1.3;")
    wait_for(lambda: _all_valid(2), ISSUE_TIMEOUT, "both certificates valid")
    names = ["a.example.test", "b.example.test"]

    cases = [
        (ec.EllipticCurvePublicKey, ["-tls1_2", "-sigalgs", "ECDSA+SHA256"]),
        (rsa.RSAPublicKey, ["-tls1_2", "-sigalgs", "RSA+SHA256"]),
        (rsa.RSAPublicKey, ["-tls1_2", "-sigalgs", "rsa_pss_rsae_sha256"]),
        (ec.EllipticCurvePublicKey, ["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"]),
        (rsa.RSAPublicKey, ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"]),
    ]
    serials = {}
    for kind, args in cases:
        leaf = _s_client_leaf(HTTPS_PORT, "a.example.test", *args)
        assert isinstance(leaf.public_key(), kind), (args, leaf)
        # issued by pebble: the placeholder does not linger as a third one
        assert not is_self_signed(leaf) and sans(leaf) == names, (args, leaf)
        serials.setdefault(kind, set()).add(leaf.serial_number)
    assert len(serials[ec.EllipticCurvePublicKey]) == 1
    assert len(serials[rsa.RSAPublicKey]) == 1
    assert not srv.alerts(), srv.alerts()


def _ip_sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]


def test_ip_identifier_http01(nginx_factory, pebble, state_dir):
    """RFC 8738: an IP literal among the names; pebble validates http-01 on
    that address's httpPort, and the certificate carries an iPAddress SAN."""
    srv = nginx_factory()
    srv.write_conf(managed_http_conf(pebble, state_dir, names="a.example.test",
                                     cert_args="127.0.0.1 a.example.test"))
    rc, out = srv.test_config()
    assert rc == 0, out
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))
    wait_for(lambda: _all_valid(1), ISSUE_TIMEOUT, "certificate valid")
    # an IP client sends no SNI: the managed server is the port's default
    leaf = _s_client_leaf(HTTPS_PORT, None)
    assert not is_self_signed(leaf), leaf
    assert _ip_sans(leaf) == ["127.0.0.1"], leaf
    assert sans(leaf) == ["a.example.test"], leaf
    assert not srv.alerts(), srv.alerts()


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


def test_challenge_list_config(nginx_factory, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = nginx_factory()
    srv.write_conf(managed_http_conf(pebble, state_dir,
                                     cert_args="challenge=tls-alpn-01,http-01"))
    rc, out = srv.test_config()
    assert rc == 0, out
    srv.write_conf(managed_http_conf(pebble, state_dir,
                                     issuer_extra="challenge http-01 http-01;"))
    rc, out = srv.test_config()
    assert rc != 0 and "listed twice" in out, out
    srv.write_conf(managed_http_conf(pebble, state_dir,
                                     cert_args="challenge=http-01,bogus"))
    rc, out = srv.test_config()
    assert rc != 0 and "invalid challenge type" in out, out


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

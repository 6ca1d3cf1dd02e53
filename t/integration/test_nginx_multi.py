"""nginx, issue 4: several certificates per server (an ECDSA and an RSA one
for the same names, the handshake picks by the client's signature
algorithms), IP identifiers (RFC 8738) and challenge lists with fallback."""

import subprocess

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nginx_server import HTTPS_PORT, get_status, managed_http_conf, start_managed
from pebble import HTTP_PORT
from tlsutil import is_self_signed, sans, wait_for

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

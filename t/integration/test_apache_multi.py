"""Apache (mod_acme_auto), issue 4: several certificates per vhost (an
ECDSA and an RSA one for the same names, OpenSSL picking by the client's
signature algorithms), IP identifiers (RFC 8738) and challenge lists with
fallback."""

import subprocess

from apache_server import (HTTP_PORT, HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status, managed_conf, status_cert)
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from tlsutil import is_self_signed, key_desc, sans, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 60


def _s_client_cert(port, sni, *args):
    """The leaf the server sends to `openssl s_client` with args (PEM -> x509)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-servername", sni] + list(args)
    p = subprocess.run(cmd, input=b"", capture_output=True, timeout=15)
    out = p.stdout.decode(errors="replace")
    begin = out.find("-----BEGIN CERTIFICATE-----")
    end = out.find("-----END CERTIFICATE-----")
    assert begin >= 0 and end > begin, (cmd, out[-2000:], p.stderr[-2000:])
    return x509.load_pem_x509_certificate(
        out[begin:end + len("-----END CERTIFICATE-----")].encode())


def test_ecdsa_and_rsa_certificates_on_one_vhost(apache_factory, pebble, root_file,
                                                 state_dir):
    srv = apache_factory()
    srv.write_conf(managed_conf(
        pebble, state_dir,
        cert_args="key=ecdsa:256\n    AcmeCertificate pebble key=rsa:2048"))
    srv.start()
    parent = srv.parent_pid

    def both_valid():
        certs = get_status()["certificates"]
        return len(certs) == 2 and all(c["state"] == "valid" for c in certs)
    wait_for(both_valid, ISSUE_TIMEOUT, "both certificates issued")

    def served(args):
        c = _s_client_cert(HTTPS_PORT, "a.example.test", *args)
        return c if not is_self_signed(c) else None

    cases = [
        (["-tls1_2", "-sigalgs", "ECDSA+SHA256"], "ecdsa:256"),
        (["-tls1_2", "-sigalgs", "RSA+SHA256"], "rsa:2048"),
        (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"], "ecdsa:256"),
        (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"], "rsa:2048"),
    ]
    serials = {}
    for args, want in cases:
        # every child picks the new certificates up within about a second
        cert = wait_for(lambda: served(args), 15, "ACME certificate for %s" % args)
        assert key_desc(cert) == want, (args, key_desc(cert))
        assert sans(cert) == ["a.example.test", "b.example.test"]
        serials.setdefault(want, set()).add(cert.serial_number)
    assert all(len(v) == 1 for v in serials.values()), serials
    assert srv.parent_pid == parent and srv.running()
    assert srv.error_log().count("resuming normal operations") == 1
    assert not srv.crashes(), srv.crashes()


def _ip_sans(cert):
    ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    return [str(a) for a in ext.value.get_values_for_type(x509.IPAddress)]


def test_ip_identifier_http01(apache_factory, pebble, root_file, state_dir):
    """AcmeCertificate for 127.0.0.1: an "ip" identifier, validated by
    http-01 on pebble's httpPort; a client without SNI (connecting to the
    IP) gets the certificate with the IP SAN."""
    srv = apache_factory()
    srv.write_conf(managed_conf(pebble, state_dir, names=("a.example.test",),
                                cert_args="127.0.0.1"))
    rc, out = srv.test_config()
    assert rc == 0, out
    srv.start()
    parent = srv.parent_pid

    cert = wait_acme_cert(HTTPS_PORT, "127.0.0.1", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert _ip_sans(cert) == ["127.0.0.1"]
    assert sans(cert) == []
    st = status_cert(get_status())
    assert st["state"] == "valid" and st["last_error"] is None, st
    assert srv.parent_pid == parent and srv.running()
    assert not srv.crashes(), srv.crashes()


def test_challenge_list_falls_back(apache_factory, pebble, root_file, state_dir):
    """AcmeChallenge http-01 tls-alpn-01 with nothing on pebble's httpPort:
    the first attempt fails with an "http-01: ..." error, the next one
    (after the first backoff, about a minute) uses tls-alpn-01 and issues."""
    from test_apache_tlsalpn import STATUS_PORT, _server
    from pebble import HTTP_PORT as PEBBLE_HTTP_PORT, TLS_PORT, port_open

    srv = _server(apache_factory, pebble, state_dir, challenge="http-01 tls-alpn-01")
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
    from test_apache_tlsalpn import _server
    from pebble import TLS_PORT

    srv = _server(apache_factory, pebble, state_dir, cert_args="127.0.0.1")
    srv.start()
    cert = wait_acme_cert(TLS_PORT, "127.0.0.1", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert _ip_sans(cert) == ["127.0.0.1"]
    assert "answering tls-alpn-01 challenge for 127.0.0.1" in srv.error_log()
    assert not srv.crashes(), srv.crashes()

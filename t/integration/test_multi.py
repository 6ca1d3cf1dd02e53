"""nginx and Apache, issue 4: several certificates per server / vhost (an
ECDSA and an RSA one for the same names, OpenSSL picking by the client's
signature algorithms), IP identifiers (RFC 8738) over http-01 and
tls-alpn-01, and a challenge list falling back from http-01 to tls-alpn-01
(servers.use_tls_alpn: the managed server on pebble's tlsPort, nothing on
its httpPort)."""

import pytest
from cryptography import x509

from pebble import HTTP_PORT as PEBBLE_HTTP_PORT, TLS_PORT, port_open
from servers import HTTPS_PORT
from tlsutil import (is_self_signed, key_desc, s_client_leaf, sans, wait_acme_cert,
                     wait_for)

ISSUE_TIMEOUT = 90
NAMES = ["a.example.test", "b.example.test"]


def _s_client_leaf(port, sni, *args):
    leaf = s_client_leaf(port, sni, *args)
    assert leaf is not None, ("no certificate", args)
    return leaf


def _all_valid(server, n):
    certs = server.status()["certificates"]
    return len(certs) == n and all(c["state"] == "valid" for c in certs)


def _ip_sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]


# a second certificate line in the managed server / vhost (nginx: TLS 1.2
# allowed there too)
TWO_KEYS = {
    "nginx": "key=ecdsa:256;\n        acme_certificate pebble key=rsa:2048;\n"
             "        ssl_protocols TLSv1.2 TLSv1.3",
    "apache": "key=ecdsa:256\n    AcmeCertificate pebble key=rsa:2048",
}


def test_ecdsa_and_rsa_certificates_in_one_server(server, pebble, state_dir):
    server.start_managed(pebble, state_dir, cert_args=TWO_KEYS[server.kind])
    main_pid = server.main_pid
    wait_for(lambda: _all_valid(server, 2), ISSUE_TIMEOUT, "both certificates valid")

    cases = [
        (["-tls1_2", "-sigalgs", "ECDSA+SHA256"], "ecdsa:256"),
        (["-tls1_2", "-sigalgs", "RSA+SHA256"], "rsa:2048"),
        (["-tls1_2", "-sigalgs", "rsa_pss_rsae_sha256"], "rsa:2048"),
        (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"], "ecdsa:256"),
        (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"], "rsa:2048"),
    ]
    serials = {}
    for args, want in cases:
        if server.kind == "apache":
            # every child picks the new certificates up within about a second
            leaf = wait_for(lambda: (lambda c: c if not is_self_signed(c) else None)(
                _s_client_leaf(HTTPS_PORT, "a.example.test", *args)), 15,
                "ACME certificate for %s" % args)
        else:
            leaf = _s_client_leaf(HTTPS_PORT, "a.example.test", *args)
        assert key_desc(leaf) == want, (args, key_desc(leaf))
        # issued by pebble: the placeholder does not linger as a third one
        assert not is_self_signed(leaf) and sans(leaf) == NAMES, (args, leaf)
        serials.setdefault(want, set()).add(leaf.serial_number)
    assert len(serials["ecdsa:256"]) == 1 and len(serials["rsa:2048"]) == 1, serials
    assert server.main_pid == main_pid and server.running()
    assert server.generations() == 1
    assert not server.problems(), server.problems()


# how each server logs its answer to a tls-alpn-01 validation of name
ANSWERING_ALPN = {"nginx": 'acme: answering tls-alpn-01 for "%s"',
                  "apache": "answering tls-alpn-01 challenge for %s"}


# (challenge, certificate arguments, the DNS names of the certificate): an
# IP with a name and an IP alone over http-01, an IP alone over tls-alpn-01
IP_CASES = [("http-01", "127.0.0.1 a.example.test", ["a.example.test"]),
            ("http-01", "127.0.0.1", []),
            ("tls-alpn-01", "127.0.0.1", [])]


@pytest.mark.parametrize("challenge,cert_args,dns_names", IP_CASES,
                         ids=["http01-ip-and-name", "http01-ip-only", "tls-alpn01-ip-only"])
def test_ip_identifier(server, challenge, cert_args, dns_names, pebble, root_file, state_dir):
    """RFC 8738: an IP literal among the names (an "ip" identifier); pebble
    validates http-01 on that address's httpPort, tls-alpn-01 on its
    tlsPort with the reverse-DNS name (1.0.0.127.in-addr.arpa) as SNI
    (section 6); the certificate carries an iPAddress SAN; a client without
    SNI (connecting to the IP) gets it: the managed server / vhost is the
    port's default."""
    if challenge == "tls-alpn-01":
        server.use_tls_alpn()
    server.write_managed(pebble, state_dir, names=["a.example.test"], cert_args=cert_args,
                         issuer={"challenge": challenge})
    rc, out = server.test_config()
    assert rc == 0, out
    server.start()
    main_pid = server.main_pid
    wait_for(lambda: _all_valid(server, 1), ISSUE_TIMEOUT, "certificate valid")
    cert = wait_acme_cert(server.https_port, "127.0.0.1", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert _ip_sans(cert) == ["127.0.0.1"]
    server.wait_installed()
    leaf = _s_client_leaf(server.https_port, None)
    assert not is_self_signed(leaf), leaf
    assert _ip_sans(leaf) == ["127.0.0.1"], leaf
    assert sans(leaf) == dns_names, leaf
    st = server.status_cert()
    assert st["state"] == "valid" and st["last_error"] is None, st
    assert st["challenge"] == challenge, st
    if challenge == "tls-alpn-01":
        assert ANSWERING_ALPN[server.kind] % "127.0.0.1" in server.error_log()
    assert server.main_pid == main_pid and server.running()
    assert not server.problems(), server.problems()


# both servers word an unknown challenge type alike (acme_job_challenges_parse)
UNKNOWN_CHALLENGE = 'unsupported challenge type "bogus"'


def test_challenge_list_config(server, pebble_factory, state_dir):
    """A challenge list per certificate (acme_certificate / AcmeCertificate
    challenge=); a type listed twice and an unknown one are configuration
    errors, worded alike on both servers, in challenge= and in the issuer's
    list, which takes one type a word (challenge= a comma list).  On the
    tls-alpn-01 setup: Apache wants acme-tls/1 in the vhost's Protocols for
    a list with tls-alpn-01."""
    pebble = pebble_factory(start=False)
    server.use_tls_alpn()
    server.write_managed(pebble, state_dir, cert_args="challenge=tls-alpn-01,http-01")
    rc, out = server.test_config()
    assert rc == 0, out
    server.write_managed(pebble, state_dir, issuer={"challenge": "http-01 http-01"})
    rc, out = server.test_config()
    assert rc != 0 and "listed twice" in out, out
    server.write_managed(pebble, state_dir, cert_args="challenge=http-01,bogus")
    rc, out = server.test_config()
    assert rc != 0 and UNKNOWN_CHALLENGE in out, out
    server.write_managed(pebble, state_dir, issuer={"challenge": "http-01 bogus"})
    rc, out = server.test_config()
    assert rc != 0 and UNKNOWN_CHALLENGE in out, out
    server.write_managed(pebble, state_dir, issuer={"challenge": "http-01,tls-alpn-01"})
    rc, out = server.test_config()
    assert rc != 0 and "list the types as separate words" in out, out



def test_challenge_list_falls_back(server, pebble, root_file, state_dir):
    """A challenge list "http-01 tls-alpn-01" with nothing on pebble's
    httpPort: the first attempt fails with an "http-01: ..." error, the
    attempt after that failure (after the first backoff, retry_delay, short
    here: the failed http-01 attempt is seen in the status during it) uses
    tls-alpn-01 and issues, without a restart."""
    server.use_tls_alpn()
    server.start_managed(pebble, state_dir,
                         issuer={"challenge": "http-01 tls-alpn-01", "retry_delay": "4s"})
    main_pid = server.main_pid
    assert not port_open(PEBBLE_HTTP_PORT), "nothing may answer http-01 in this test"

    def failed_once():
        c = server.status_cert()
        return c if c["consecutive_failures"] >= 1 and c["last_error"] else None

    c = wait_for(failed_once, ISSUE_TIMEOUT, "the http-01 attempt to fail")
    assert c["last_error"].startswith("http-01: "), c
    assert c["challenge"] == "http-01", c
    if server.kind == "nginx":
        assert "order failed: http-01: " in server.error_log()

    leaf = wait_acme_cert(TLS_PORT, "a.example.test", root_file, 150,
                          proc_alive=server.running)
    assert not is_self_signed(leaf)
    assert sans(leaf) == NAMES
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        server.status_cert()), 20, "state valid")
    assert c["challenge"] == "tls-alpn-01" and c["last_error"] is None, c
    assert c["consecutive_failures"] == 0, c
    assert ANSWERING_ALPN[server.kind] % "a.example.test" in server.error_log()
    assert server.main_pid == main_pid and server.running()
    assert not server.problems(), server.problems()

"""nginx and Apache: a certificate already in place (nginx ssl_certificate
+ ssl_certificate_key, Apache SSLCertificateFile + SSLCertificateKeyFile,
e.g. certbot's) next to the managed one is the bridge: served instead of
the placeholder while the CA cannot be reached, shown in the status, then
replaced by the first managed certificate, which the log says once; a
restart serves the stored managed certificate, never the bridge again."""

import calendar
import os

import pytest

from pebble import make_ca, make_leaf
from tlsutil import (load_pem_certs, parse_rfc3339, s_client_leaf, same_serial, served_cert,
                     wait_acme_cert, wait_for)

NAME = "a.example.test"
RETIRED = "is no longer used"


def _with_bridge(server, text, crt, key, *more):
    """The managed server / vhost gets its own certificate and key (more:
    further certificate, key pairs)."""
    pairs = [(crt, key)] + list(zip(more[::2], more[1::2]))
    if server.kind == "nginx":
        line = "acme_certificate pebble"
        own = "".join("ssl_certificate %s;\n        ssl_certificate_key %s;\n        " % p
                      for p in pairs)
    else:
        line = "AcmeCertificate pebble"
        own = "".join("SSLCertificateFile %s\n    SSLCertificateKeyFile %s\n    " % p
                      for p in pairs)
    i = text.index(line)
    return text[:i] + own + text[i:]


def _failed_once(server):
    c = server.status_cert()
    return c if c["consecutive_failures"] >= 1 else None


def test_existing_certificate_is_the_bridge(server, pebble_factory, workdir, state_dir):
    ca_key, ca_crt = make_ca(workdir, "old-ca")
    key, crt = make_leaf(workdir, ca_key, ca_crt, "old", ["DNS:" + NAME], cn=NAME)
    with open(crt) as f:
        old = load_pem_certs(f.read())[0]

    p = pebble_factory(start=False)
    p.start_dns()                       # the CA is down at first
    # the first backoff step (retry_delay) is the wait for the attempt after
    # the CA came up: short, but longer than pebble takes to start
    text = server.conf(p, state_dir, names=[NAME], issuer={"retry_delay": "4s"})
    server.raw.write_conf(_with_bridge(server, text, crt, key))
    rc, out = server.test_config()
    assert rc == 0, out
    server.start()

    # the certificate it had is served, not the placeholder, also after
    # a failed attempt
    assert served_cert(server.https_port, NAME).serial_number == old.serial_number
    c = wait_for(lambda: _failed_once(server), 60, "a failed attempt in the status")
    assert c["serial"] is None
    assert c["bridge"] is not None, c
    assert same_serial(c["bridge"]["serial"], old.serial_number)
    assert c["bridge"]["file"] == crt
    assert parse_rfc3339(c["bridge"]["not_after"]).timestamp() == \
        calendar.timegm(old.not_valid_after.utctimetuple())
    assert served_cert(server.https_port, NAME).serial_number == old.serial_number

    # the CA comes up: the managed certificate replaces the bridge
    p.start_pebble()
    root = p.write_root(os.path.join(workdir, "root.pem"))
    cert = wait_acme_cert(server.https_port, NAME, root, 150, proc_alive=server.running)
    server.wait_installed()
    for _ in range(10):
        assert served_cert(server.https_port, NAME).serial_number == cert.serial_number
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        server.status_cert()), 20, "state valid")
    assert c["bridge"] is None
    log = server.error_log()
    assert log.count(RETIRED) == 1, log
    line = [ln for ln in log.splitlines() if RETIRED in ln][0]
    assert "notice" in line and crt in line, line

    # a restart: the stored managed certificate at once, never the bridge
    server.stop()
    server.start()
    assert served_cert(server.https_port, NAME).serial_number == cert.serial_number
    c = server.status_cert()
    assert c["bridge"] is None and same_serial(c["serial"], cert.serial_number)
    assert server.error_log(since_start=True).count(RETIRED) == 0
    assert not server.problems(), server.problems()


@pytest.mark.parametrize("server", ["nginx"], indirect=True)
def test_nginx_bridge_lines(server, pebble, workdir, state_dir):
    """The lines may follow acme_certificate; a certificate without its key
    and a variable file name are refused, naming the acme_certificate line."""
    ca_key, ca_crt = make_ca(workdir, "old-ca")
    key, crt = make_leaf(workdir, ca_key, ca_crt, "old", ["DNS:" + NAME], cn=NAME)
    text = server.conf(pebble, state_dir, names=[NAME])
    line = [ln for ln in text.splitlines() if "acme_certificate pebble" in ln][0]

    after = text.replace(line, line + "\n        ssl_certificate %s;\n"
                         "        ssl_certificate_key %s;" % (crt, key), 1)
    server.raw.write_conf(after)
    rc, out = server.test_config()
    assert rc == 0, out

    for own, what in (("ssl_certificate %s;" % crt, "as many"),
                      ("ssl_certificate $ssl_server_name.pem; ssl_certificate_key %s;" % key,
                       "with variables")):
        server.raw.write_conf(text.replace(line, own + " " + line, 1))
        rc, out = server.test_config()
        assert rc != 0 and what in out, out
        assert "nginx.conf:%d" % server.conf_lines("acme_certificate pebble")[0] in out, out


def test_bridge_of_another_key_type_retires(server, pebble, root_file, workdir, state_dir):
    """An RSA + ECDSA bridge beside a managed ECDSA certificate: once the
    ECDSA one is issued, a client that can only use RSA no longer gets the
    bridge (it fails: nothing of its type is managed) and an ECDSA client
    gets the managed certificate, in every worker / child."""
    ca_key, ca_crt = make_ca(workdir, "old-ca")
    key, crt = make_leaf(workdir, ca_key, ca_crt, "old-rsa", ["DNS:" + NAME], cn=NAME,
                         key_type="rsa:2048")
    ekey, ecrt = make_leaf(workdir, ca_key, ca_crt, "old-ec", ["DNS:" + NAME], cn=NAME)
    with open(crt) as f:
        old = load_pem_certs(f.read())[0]
    text = server.conf(pebble, state_dir, names=[NAME])
    if server.kind == "nginx":
        # TLS 1.2 too, where a client's signature algorithms pick the type
        text = text.replace("acme_certificate pebble",
                            "ssl_protocols TLSv1.2 TLSv1.3;\n        "
                            "acme_certificate pebble", 1)
    server.raw.write_conf(_with_bridge(server, text, crt, key, ecrt, ekey))
    rc, out = server.test_config()
    assert rc == 0, out
    server.start()

    rsa_only = ("-tls1_2", "-sigalgs", "RSA+SHA256")
    ecdsa_only = ("-tls1_2", "-sigalgs", "ECDSA+SHA256")
    leaf = s_client_leaf(server.https_port, NAME, *rsa_only)
    if leaf is not None:                    # not issued yet: the bridge
        assert leaf.serial_number == old.serial_number

    cert = wait_acme_cert(server.https_port, NAME, root_file, 90, proc_alive=server.running)
    server.wait_installed()
    for _ in range(10):
        leaf = s_client_leaf(server.https_port, NAME, *ecdsa_only)
        assert leaf is not None and leaf.serial_number == cert.serial_number
        assert s_client_leaf(server.https_port, NAME, *rsa_only) is None
    assert server.status_cert()["bridge"] is None

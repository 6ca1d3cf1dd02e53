"""nginx: first issuance, store layout, restart reuse, status JSON, nonce errors."""

import os
import pwd
import stat
import time

from nginx_server import HTTPS_PORT, get_status, start_managed, status_cert
from tlsutil import (describe, handshake, is_self_signed, key_desc, load_pem_certs,
                     openssl_verify, parse_rfc3339, same_serial, sans, served_cert,
                     served_chain_pem, serial_hex, wait_acme_cert, wait_for)

NAMES = ["a.example.test", "b.example.test"]
CERT_ID = "a.example.test_ecdsa-256"
ISSUE_TIMEOUT = 60


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_issuance(nginx_factory, pebble, root_file, state_dir, workdir):
    srv = start_managed(nginx_factory(), pebble, state_dir)

    # the server answers TLS at once (fallback or already the real one)
    assert handshake(HTTPS_PORT, "a.example.test")

    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES
    assert not is_self_signed(cert)
    assert key_desc(cert) == "ecdsa:256"

    # the second name gets the same certificate, verified for that name
    cert_b = served_cert(HTTPS_PORT, "b.example.test", cafile=root_file)
    assert cert_b.serial_number == cert.serial_number

    # the full chain as sent verifies with openssl against /roots/0
    chain = served_chain_pem(HTTPS_PORT, "a.example.test")
    assert len(chain) >= 2, "leaf + intermediate expected, got %d" % len(chain)
    ok, out = openssl_verify(chain[0], chain[1:], root_file, workdir, name="b.example.test")
    assert ok, out

    # store layout and permissions (common/acme_store.h)
    www = pwd.getpwnam("www-data")
    cert_dir = os.path.join(state_dir, "certs", CERT_ID)
    bundle = os.path.join(cert_dir, "bundle.pem")
    for d in (state_dir, os.path.join(state_dir, "certs"), cert_dir):
        assert _mode(d) == 0o700, d
        assert os.stat(d).st_uid == www.pw_uid, d
    for f in ("account.key", "account.json"):
        assert _mode(os.path.join(state_dir, f)) == 0o600, f
    assert _mode(bundle) == 0o600
    with open(bundle) as f:
        pem = f.read()
    assert pem.lstrip().startswith("-----BEGIN PRIVATE KEY-----") or \
        pem.lstrip().startswith("-----BEGIN EC PRIVATE KEY-----"), pem[:40]
    stored = load_pem_certs(pem)
    assert stored[0].serial_number == cert.serial_number
    assert len(stored) == len(chain)

    assert not srv.alerts(), srv.alerts()


def test_restart_reuses_stored_certificate(nginx_factory, pebble, root_file, state_dir):
    srv = start_managed(nginx_factory(), pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=srv.running)
    wait_for(lambda: status_cert(get_status())["state"] == "valid", 20, "state valid")
    srv.stop()
    orders = pebble.count_requests("/order-plz")
    issued = pebble.issued_count()
    assert orders >= 1

    srv.start(ports=(HTTPS_PORT,))
    # served from the store right away, before any ACME traffic
    again = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 10,
                           proc_alive=srv.running)
    assert again.serial_number == first.serial_number

    # give the new lease holder the time to look at the certificate ...
    doc = wait_for(lambda: (lambda d: d if d["acme_pid"] and
                            status_cert(d)["state"] == "valid" else None)(get_status()),
                   20, "lease taken and certificate valid after restart")
    assert doc["acme_pid"] in srv.worker_pids()
    c = status_cert(doc)
    assert same_serial(c["serial"], first.serial_number)
    assert parse_rfc3339(c["next_renewal"]).timestamp() > time.time()
    time.sleep(3)   # an observation window, not a threshold: nothing may happen in it
    # ... and it ordered nothing
    assert pebble.count_requests("/order-plz") == orders
    assert pebble.issued_count() == issued
    assert served_cert(HTTPS_PORT, "a.example.test").serial_number == first.serial_number


def test_status_json(nginx_factory, pebble, root_file, state_dir):
    srv = start_managed(nginx_factory(), pebble, state_dir)
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)

    def settled():
        d = get_status()
        c = status_cert(d)
        return d if c["state"] == "valid" and d["acme_pid"] else None

    doc = wait_for(settled, 20, "status valid with a lease holder")
    assert doc["version"] == 1
    assert doc["server"] == "nginx"
    parse_rfc3339(doc["generated_at"])
    assert doc["acme_pid"] in srv.worker_pids()
    c = status_cert(doc)
    assert c["id"] == CERT_ID
    assert c["names"] == NAMES
    assert c["issuer"] == "pebble"
    assert c["directory"] == pebble.directory_url
    assert c["key_type"] == "ecdsa:256"
    assert c["step"] is None
    assert same_serial(c["serial"], cert.serial_number)
    assert "Pebble Intermediate CA" in c["ca_issuer"]
    nb, na = parse_rfc3339(c["not_before"]), parse_rfc3339(c["not_after"])
    assert abs(na.timestamp() - cert.not_valid_after.timestamp()) < 2
    assert nb < na
    assert parse_rfc3339(c["next_renewal"]) < na
    parse_rfc3339(c["last_success"])
    assert c["last_error"] is None
    assert c["consecutive_failures"] == 0

    # the HTTPS server's own status location answers the same document
    import tlsutil
    status, headers, body = tlsutil.http_get("https://127.0.0.1:%d/acme-status" % HTTPS_PORT,
                                             host="a.example.test")
    assert status == 200
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert ctype.startswith("application/json"), ctype


def test_issuance_with_half_of_nonces_rejected(nginx_factory, pebble_factory, workdir,
                                               state_dir):
    p = pebble_factory(nonce_reject=50)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    srv = start_managed(nginx_factory(), p, state_dir)
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root, ISSUE_TIMEOUT * 2,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES
    assert not srv.alerts(), srv.alerts()


def test_rsa_certificate_key(nginx_factory, pebble, root_file, state_dir):
    srv = start_managed(nginx_factory(), pebble, state_dir, names="a.example.test",
                        cert_args="key=rsa:2048")
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert key_desc(cert) == "rsa:2048", describe(cert)
    assert os.path.exists(os.path.join(state_dir, "certs", "a.example.test_rsa-2048",
                                       "bundle.pem"))
    c = status_cert(get_status(), "a.example.test_rsa-2048")
    assert c["key_type"] == "rsa:2048"
    wait_for(lambda: same_serial(status_cert(get_status())["serial"], serial_hex(cert)),
             20, "status serial == served serial")


def test_reload_keeps_certificate_without_new_order(nginx_factory, pebble, root_file,
                                                    state_dir):
    srv = start_managed(nginx_factory(), pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=srv.running)
    wait_for(lambda: status_cert(get_status())["state"] == "valid", 20, "state valid")
    orders = pebble.count_requests("/order-plz")

    new_workers = srv.reload()
    # the new workers serve the stored certificate (matched by id across the
    # reload), not the fallback
    again = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 10,
                           proc_alive=srv.running)
    assert again.serial_number == first.serial_number
    d = wait_for(lambda: (lambda d: d if d["acme_pid"] in new_workers else None)(get_status()),
                 20, "a new worker holding the lease")
    assert status_cert(d)["state"] == "valid"
    time.sleep(3)   # observation window: no order may start in it
    assert pebble.count_requests("/order-plz") == orders
    assert not srv.alerts(), srv.alerts()

"""nginx and Apache: first issuance without restart, store layout, restart
reuse, reload / graceful restart, status JSON, nonce errors, RSA keys,
changed names (http-01 answers and 404s: test_http01.py)."""

import os
import pwd
import stat
import time

import pytest

from servers import APACHE_MPMS, HTTPS_PORT, SERVERS
from serverlib import status_cert
from tlsutil import (describe, handshake, http_get, is_self_signed, key_desc, load_pem_certs,
                     openssl_verify, parse_rfc3339, same_serial, sans, served_cert,
                     served_chain_pem, serial_hex, wait_acme_cert, wait_for)

NAMES = ["a.example.test", "b.example.test"]
CERT_ID = "a.example.test_ecdsa-256"
ISSUE_TIMEOUT = 60


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("server", SERVERS + APACHE_MPMS, indirect=True)
def test_first_issue(server, pebble, root_file, state_dir, workdir):
    server.start_managed(pebble, state_dir)
    main_pid = server.main_pid

    # the server answers TLS at once (fallback / placeholder or already the real one)
    assert handshake(HTTPS_PORT, "a.example.test")

    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert sans(cert) == NAMES              # nginx: server_name; Apache: ServerName + ServerAlias
    assert not is_self_signed(cert)
    assert key_desc(cert) == "ecdsa:256"

    # the second name gets the same certificate, verified for that name,
    # once every serving process has it (Apache: each child parses it once)
    server.wait_installed()
    cert_b = served_cert(HTTPS_PORT, "b.example.test", cafile=root_file)
    assert cert_b.serial_number == cert.serial_number

    # no restart of any kind: same master / parent, one configuration generation
    assert server.main_pid == main_pid and server.running()
    assert server.generations() == 1

    # the full chain as sent verifies with openssl against /roots/0
    chain = served_chain_pem(HTTPS_PORT, "a.example.test")
    assert len(chain) >= 2, "leaf + intermediate expected, got %d" % len(chain)
    ok, out = openssl_verify(chain[0], chain[1:], root_file, workdir, name="b.example.test")
    assert ok, out

    # every serving process serves it (each has its own copy): many connections
    for _ in range(30):
        der = handshake(HTTPS_PORT, "a.example.test", cafile=root_file)
        assert der

    # store layout and permissions (common/io/acme_store.h), created by the
    # root master / parent for the www-data workers / children
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
    assert "PRIVATE KEY-----" in pem.split("\n", 1)[0]
    stored = load_pem_certs(pem)
    assert stored[0].serial_number == cert.serial_number
    assert len(stored) == len(chain)

    assert not server.problems(), server.problems()


def test_restart_reuses_stored_certificate(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=server.running)
    wait_for(lambda: server.status_cert()["state"] == "valid", 20, "state valid")
    server.stop()
    orders = pebble.count_requests("/order-plz")
    issued = pebble.issued_count()
    assert orders >= 1

    if server.kind == "apache":
        server.start()
        # served from the store by mod_ssl itself, right at startup
        again = served_cert(HTTPS_PORT, "a.example.test", cafile=root_file)
    else:
        server.start(ports=(HTTPS_PORT,))
        # served from the store right away, before any ACME traffic
        again = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 10,
                               proc_alive=server.running)
    assert again.serial_number == first.serial_number
    if server.kind == "nginx":
        # parsed once, by the master before any worker existed: the workers
        # inherit it and parse nothing before they serve (issue 9)
        log = server.error_log(since_start=True)
        assert 'certificate "%s" parsed in master process' % CERT_ID in log, log[-3000:]
        assert 'certificate "%s" parsed in worker process' % CERT_ID not in log, log[-3000:]

    # give the new lease holder / driving child the time to look at the
    # certificate ...
    doc = wait_for(lambda: (lambda d: d if d["acme_pid"] and
                            status_cert(d)["state"] == "valid" else None)(server.status()),
                   20, "lease taken and certificate valid after restart")
    assert doc["acme_pid"] in server.pids()
    c = status_cert(doc)
    assert same_serial(c["serial"], first.serial_number)
    assert parse_rfc3339(c["next_renewal"]).timestamp() > time.time()
    time.sleep(3)   # an observation window, not a threshold: nothing may happen in it
    # ... and it ordered nothing
    assert pebble.count_requests("/order-plz") == orders
    assert pebble.issued_count() == issued
    assert served_cert(HTTPS_PORT, "a.example.test").serial_number == first.serial_number

    # a reload / graceful restart (new workers / children, same master /
    # parent) keeps serving it too
    main_pid = server.main_pid
    server.reload()
    assert server.main_pid == main_pid
    assert wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 10,
                          proc_alive=server.running).serial_number == first.serial_number
    assert not server.problems(), server.problems()


def test_reload_keeps_certificate_without_new_order(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=server.running)
    wait_for(lambda: server.status_cert()["state"] == "valid", 20, "state valid")
    orders = pebble.count_requests("/order-plz")

    new_pids = server.reload()
    # the new workers / children serve the stored certificate (matched by id
    # across the reload), not the fallback
    again = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 10,
                           proc_alive=server.running)
    assert again.serial_number == first.serial_number
    d = wait_for(lambda: (lambda d: d if d["acme_pid"] in new_pids else None)(server.status()),
                 20, "a new worker / child holding the lease")
    assert status_cert(d)["state"] == "valid"
    time.sleep(3)   # observation window: no order may start in it
    assert pebble.count_requests("/order-plz") == orders
    assert not server.problems(), server.problems()


def test_status_json(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir)
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)

    def settled():
        d = server.status()
        return d if status_cert(d)["state"] == "valid" and d["acme_pid"] else None

    doc = wait_for(settled, 20, "status valid with a lease holder / driving child")
    # one schema on both servers (common/core/acme_status.h)
    assert set(doc) == {"version", "server", "generated_at", "acme_pid", "certificates"}
    assert doc["version"] == 2
    assert doc["server"] == server.kind
    parse_rfc3339(doc["generated_at"])
    assert doc["acme_pid"] in server.pids()
    c = status_cert(doc)
    assert set(c) == {"id", "names", "issuer", "directory", "key_type", "challenge", "state", "step",
                      "serial", "ca_issuer", "not_before", "not_after", "next_renewal",
                      "last_success", "last_error", "consecutive_failures",
                      "store_error", "reason", "pending", "bridge", "managed", "days_left",
                      "expiring", "subject", "sans", "file", "used_by", "orders", "renewals",
                      "spki_pin", "next_spki_pin", "ari", "issuers"}
    assert c["managed"] is True
    assert c["id"] == CERT_ID
    assert c["names"] == NAMES
    assert c["issuer"] == "pebble"
    assert c["issuers"] == ["pebble"]   # fallback= adds to it (test_failover.py)
    assert c["bridge"] is None          # no certificate of its own (test_bridge.py)
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
    status, headers, body = http_get("https://127.0.0.1:%d/acme-status" % HTTPS_PORT,
                                     host="a.example.test")
    assert status == 200
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert ctype.startswith("application/json"), ctype


def test_issuance_with_half_of_nonces_rejected(server, pebble_factory, workdir, state_dir):
    p = pebble_factory(nonce_reject=50)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    server.start_managed(p, state_dir)
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root, ISSUE_TIMEOUT * 2,
                          proc_alive=server.running)
    assert sans(cert) == NAMES
    assert not server.problems(), server.problems()


def test_rsa_certificate_key(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir, names=["a.example.test"], cert_args="key=rsa:2048")
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert key_desc(cert) == "rsa:2048", describe(cert)
    assert os.path.exists(os.path.join(state_dir, "certs", "a.example.test_rsa-2048",
                                       "bundle.pem"))
    c = server.status_cert("a.example.test_rsa-2048")
    assert c["key_type"] == "rsa:2048"
    wait_for(lambda: same_serial(server.status_cert()["serial"], serial_hex(cert)),
             20, "status serial == served serial")


def test_changed_names_order_a_new_certificate(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir, names=["a.example.test"])
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=server.running)
    assert sans(first) == ["a.example.test"]
    server.stop()

    # a name added to the server: the stored certificate serves at once, and
    # one for the new set of names replaces it (same id: same first name).
    # The CA is down meanwhile, so that "at once" is certain (the order for
    # the new names starts at once and takes well under a second).
    pebble.stop_pebble()
    server.start_managed(pebble, state_dir, names=["a.example.test", "e.example.test"],
                         issuer={"retry_delay": "1s"})
    assert served_cert(HTTPS_PORT, "a.example.test",
                       cafile=root_file).serial_number == first.serial_number
    wait_for(lambda: server.status_cert()["reason"] == "names changed", 20,
             "reason: names changed")
    pebble.start_pebble()
    root2 = pebble.write_root(root_file + ".2")     # a restarted pebble has a new root
    new = wait_for(lambda: (lambda c: c if sans(c) == ["a.example.test", "e.example.test"]
                            else None)(served_cert(HTTPS_PORT, "e.example.test",
                                                   cafile=root2)),
                   ISSUE_TIMEOUT, "a certificate with the new names")
    assert new.serial_number != first.serial_number
    assert not server.problems(), server.problems()

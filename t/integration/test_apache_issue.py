"""Apache (mod_acme_auto): first issuance without restart, store layout,
restart reuse, status JSON, http-01 answers and 404s."""

import os
import pwd
import stat
import time

import pytest

from apache_server import (HTTP_PORT, HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status, start_managed, status_cert)
from tlsutil import (handshake, http_get, is_self_signed, key_desc, load_pem_certs,
                     openssl_verify, parse_rfc3339, raw_http, same_serial, sans,
                     served_cert, served_chain_pem, wait_acme_cert, wait_for)

NAMES = ["a.example.test", "b.example.test"]
CERT_ID = "a.example.test_ecdsa-256"
ISSUE_TIMEOUT = 60


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_first_issuance_without_restart(mpm, apache_factory, pebble, root_file, state_dir,
                                        workdir):
    srv = start_managed(apache_factory(mpm=mpm), pebble, state_dir)
    parent = srv.parent_pid

    # the vhost serves TLS at once, with the placeholder or already the real one
    first = served_cert(HTTPS_PORT, "a.example.test")
    assert first is not None

    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == NAMES              # ServerName + ServerAlias
    assert not is_self_signed(cert)
    assert key_desc(cert) == "ecdsa:256"

    # each child polls the shared generation once a second and parses the
    # bundle itself: from when every live child installed it, every
    # connection gets the new certificate
    def every_child_installed():
        inst = srv.installs()
        top = max((g for (_, g) in inst), default=None)
        return top is not None and \
            set(srv.child_pids()) <= {pid for (pid, g) in inst if g == top}
    wait_for(every_child_installed, 20, "the certificate installed in every child")
    cert_b = served_cert(HTTPS_PORT, "b.example.test", cafile=root_file)
    assert cert_b.serial_number == cert.serial_number

    # no restart of any kind: same parent, one configuration generation
    assert srv.parent_pid == parent and srv.running()
    assert srv.error_log().count("resuming normal operations") == 1

    # the chain as sent verifies against pebble's root
    chain = served_chain_pem(HTTPS_PORT, "a.example.test")
    assert len(chain) >= 2, "leaf + intermediate expected, got %d" % len(chain)
    ok, out = openssl_verify(chain[0], chain[1:], root_file, workdir, name="b.example.test")
    assert ok, out

    # every child serves it (each has its own parsed copy): many connections
    for _ in range(30):
        der = handshake(HTTPS_PORT, "a.example.test", cafile=root_file)
        assert der

    # store: created by the root parent for the www-data children
    www = pwd.getpwnam("www-data")
    cert_dir = os.path.join(state_dir, "certs", CERT_ID)
    for d in (state_dir, os.path.join(state_dir, "certs"), cert_dir):
        assert _mode(d) == 0o700, d
        assert os.stat(d).st_uid == www.pw_uid, d
    for f in ("account.key", "account.json"):
        assert _mode(os.path.join(state_dir, f)) == 0o600, f
    bundle = os.path.join(cert_dir, "bundle.pem")
    assert _mode(bundle) == 0o600
    with open(bundle) as f:
        pem = f.read()
    assert "PRIVATE KEY-----" in pem.split("\n", 1)[0]
    stored = load_pem_certs(pem)
    assert stored[0].serial_number == cert.serial_number
    assert len(stored) == len(chain)
    assert not srv.crashes(), srv.crashes()


def test_restart_reuses_stored_certificate(apache_factory, pebble, root_file, state_dir):
    srv = start_managed(apache_factory(), pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=srv.running)
    wait_for(lambda: status_cert(get_status())["state"] == "valid", 20, "state valid")
    srv.stop()
    orders = pebble.count_requests("/order-plz")
    issued = pebble.issued_count()
    assert orders >= 1

    srv.start()
    # served from the store by mod_ssl itself, right at startup
    again = served_cert(HTTPS_PORT, "a.example.test", cafile=root_file)
    assert again.serial_number == first.serial_number

    doc = wait_for(lambda: (lambda d: d if d["acme_pid"] and
                            status_cert(d)["state"] == "valid" else None)(get_status()),
                   20, "a driving child and a valid certificate after restart")
    assert doc["acme_pid"] in srv.child_pids()
    c = status_cert(doc)
    assert same_serial(c["serial"], first.serial_number)
    assert parse_rfc3339(c["next_renewal"]).timestamp() > time.time()
    time.sleep(3)   # an observation window, not a threshold: nothing may happen in it
    assert pebble.count_requests("/order-plz") == orders
    assert pebble.issued_count() == issued
    assert served_cert(HTTPS_PORT, "a.example.test").serial_number == first.serial_number

    # a graceful restart (new children, same parent) keeps serving it too
    parent = srv.parent_pid
    srv.graceful()
    assert srv.parent_pid == parent
    assert served_cert(HTTPS_PORT, "a.example.test",
                       cafile=root_file).serial_number == first.serial_number
    assert not srv.crashes(), srv.crashes()


def test_status_json(apache_factory, pebble, root_file, state_dir):
    srv = start_managed(apache_factory(), pebble, state_dir)
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)

    def settled():
        d = get_status()
        return d if status_cert(d)["state"] == "valid" and d["acme_pid"] else None

    doc = wait_for(settled, 20, "status valid with a driving child")
    # the same schema as nginx's acme_status (common/acme_status.h)
    assert set(doc) == {"version", "server", "generated_at", "acme_pid", "certificates"}
    assert doc["version"] == 1
    assert doc["server"] == "apache"
    parse_rfc3339(doc["generated_at"])
    assert doc["acme_pid"] in srv.child_pids()
    c = status_cert(doc)
    assert set(c) == {"id", "names", "issuer", "directory", "key_type", "challenge", "state", "step",
                      "serial", "ca_issuer", "not_before", "not_after", "next_renewal",
                      "last_success", "last_error", "consecutive_failures",
                      "store_error"}
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

    status, headers, body = http_get("https://127.0.0.1:%d/acme-status" % HTTPS_PORT,
                                     host="a.example.test")
    assert status == 200
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert ctype.startswith("application/json"), ctype


def test_http01_unknown_and_malformed_tokens(apache_factory, pebble, root_file, state_dir):
    srv = start_managed(apache_factory(), pebble, state_dir)
    base = "http://127.0.0.1:%d" % HTTP_PORT
    for path in ("/.well-known/acme-challenge/unknownTOKEN_123-x",
                 "/.well-known/acme-challenge/",
                 "/.well-known/acme-challenge/bad.token",
                 "/.well-known/acme-challenge/" + "A" * 300,
                 "/.well-known/acme-challenge/a/b"):
        status, _, _ = http_get(base + path, host="a.example.test")
        assert status == 404, path
    # a raw request with an encoded slash and a traversal attempt
    assert raw_http(HTTP_PORT, b"GET /.well-known/acme-challenge/..%2f..%2fetc%2fpasswd "
                               b"HTTP/1.1\r\nHost: a.example.test\r\n"
                               b"Connection: close\r\n\r\n") in (400, 404)
    # other paths are left to the rest of the server
    status, _, body = http_get(base + "/index.html", host="a.example.test")
    assert status == 200 and b"hello from apache" in body

    # the real challenges were answered (pebble validated the order)
    wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                   proc_alive=srv.running)
    assert "answering http-01 challenge" in srv.error_log()


def test_changed_names_order_a_new_certificate(apache_factory, pebble, root_file, state_dir):
    srv = start_managed(apache_factory(), pebble, state_dir, names=("a.example.test",))
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                           proc_alive=srv.running)
    assert sans(first) == ["a.example.test"]
    srv.stop()

    # a name added to the vhost: the stored certificate serves at once, and
    # one for the new set of names replaces it (same id: same first name)
    start_managed(srv, pebble, state_dir, names=("a.example.test", "e.example.test"))
    assert served_cert(HTTPS_PORT, "a.example.test",
                       cafile=root_file).serial_number == first.serial_number
    new = wait_for(lambda: (lambda c: c if sans(c) == ["a.example.test", "e.example.test"]
                            else None)(served_cert(HTTPS_PORT, "e.example.test",
                                                   cafile=root_file)),
                   ISSUE_TIMEOUT, "a certificate with the new names")
    assert new.serial_number != first.serial_number
    assert not srv.crashes(), srv.crashes()

"""nginx: the CA being down at start, the ACME worker being killed mid-order."""

import os
import shutil
import signal
import time

from nginx_server import HTTPS_PORT, get_status, start_managed, status_cert
from tlsutil import (is_self_signed, load_pem_certs, same_serial, served_cert,
                     wait_acme_cert, wait_for)

CERT_ID = "a.example.test_ecdsa-256"


def test_ca_down_at_start_serves_fallback_then_issues(nginx_factory, pebble_factory,
                                                      workdir, state_dir):
    p = pebble_factory(start=False)
    p.start_dns()
    srv = start_managed(nginx_factory(), p, state_dir)

    # serving at once, with the in-memory self-signed fallback
    fb = served_cert(HTTPS_PORT, "a.example.test")
    assert is_self_signed(fb)

    def failed_once():
        c = status_cert(get_status())
        return c if c["consecutive_failures"] >= 1 and c["last_error"] else None

    c = wait_for(failed_once, 45, "a failed attempt reported in the status")
    assert c["state"] in ("fallback", "failed"), c
    assert c["serial"] is None
    assert c["next_renewal"] is not None
    # the backoff is persisted
    state_json = os.path.join(state_dir, "certs", CERT_ID, "state.json")
    wait_for(lambda: os.path.exists(state_json), 10, "state.json written")
    assert is_self_signed(served_cert(HTTPS_PORT, "a.example.test"))

    # the CA comes up: the next attempt (first backoff 60 s + jitter) issues
    p.start_pebble()
    root = p.write_root(os.path.join(workdir, "root.pem"))
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 150, proc_alive=srv.running)
    assert not is_self_signed(cert)

    def settled():
        c = status_cert(get_status())
        return c if c["state"] == "valid" else None

    c = wait_for(settled, 20, "state valid")
    assert c["consecutive_failures"] == 0
    assert c["last_error"] is None
    assert same_serial(c["serial"], cert.serial_number)
    assert not srv.alerts(), srv.alerts()


ORDER_STEPS = ("authorization", "challenge", "finalize")


def _catch_in_flight(srv, timeout=60):
    """Polls the status fast until an order exists and waits for its
    authorizations or finalization; returns (acme_pid, step) then, or None
    when the certificate became valid first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = get_status()
        except Exception:
            time.sleep(0.02)
            continue
        c = status_cert(d)
        if c["state"] == "valid":
            return None
        if c["state"] == "renewing" and d["acme_pid"] and c["step"] in ORDER_STEPS:
            return d["acme_pid"], c["step"]
        time.sleep(0.02)
    raise AssertionError("no order in flight within %ss: %r" % (timeout, get_status()))


def test_acme_worker_killed_mid_order(nginx_factory, pebble_factory, workdir):
    # pebble's VA sleeps 0-15 s before validating: orders stay in flight long
    # enough to be caught; a run that finishes before we see it starts over
    # with a fresh store (at most 3 runs).
    p = pebble_factory(va_nosleep=False)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    caught = None
    for attempt in range(3):
        state_dir = os.path.join(workdir, "state%d" % attempt, "pebble")
        srv = start_managed(nginx_factory("nginx%d" % attempt), p, state_dir,
                            names="a.example.test")
        caught = _catch_in_flight(srv)
        if caught:
            break
        srv.stop()
        shutil.rmtree(os.path.dirname(state_dir), ignore_errors=True)
    assert caught, "the order always completed before it could be caught"
    killed, step = caught
    workers_before = srv.worker_pids()
    assert killed in workers_before
    os.kill(killed, signal.SIGKILL)

    # the master replaces the worker; another worker takes the lease over
    wait_for(lambda: killed not in srv.worker_pids() and
             len(srv.worker_pids()) == len(workers_before), 20, "worker respawned")
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 120, proc_alive=srv.running)

    def settled():
        d = get_status()
        c = status_cert(d)
        return d if c["state"] == "valid" and d["acme_pid"] else None

    d = wait_for(settled, 30, "state valid with a new lease holder")
    assert d["acme_pid"] != killed
    assert d["acme_pid"] in srv.worker_pids()
    c = status_cert(d)

    # one certificate: the store's bundle == the served one == the status one
    cert_dirs = os.listdir(os.path.join(state_dir, "certs"))
    assert cert_dirs == [CERT_ID], cert_dirs
    with open(os.path.join(state_dir, "certs", CERT_ID, "bundle.pem")) as f:
        stored = load_pem_certs(f.read())
    assert stored and stored[0].serial_number == cert.serial_number
    assert same_serial(c["serial"], cert.serial_number)
    for _ in range(10):
        assert served_cert(HTTPS_PORT, "a.example.test", cafile=root).serial_number \
            == cert.serial_number
    print("killed ACME worker %d at step %r" % (killed, step))


def test_untrusted_acme_server_is_refused(nginx_factory, pebble, state_dir, workdir):
    """Without ssl_trusted_certificate the system store does not know
    pebble's API certificate: no account, no order, the fallback stays."""
    from nginx_server import managed_http_conf
    body = managed_http_conf(pebble, state_dir).replace(
        "ssl_trusted_certificate %s;" % pebble.ca_pem, "")
    srv = nginx_factory()
    srv.write_conf(body)
    srv.start(ports=(HTTPS_PORT,))

    def failed_once():
        c = status_cert(get_status())
        return c if c["consecutive_failures"] >= 1 and c["last_error"] else None

    c = wait_for(failed_once, 45, "a failed attempt reported in the status")
    assert c["state"] in ("fallback", "failed"), c
    assert pebble.count_requests("/sign-me-up") == 0
    assert pebble.count_requests("/order-plz") == 0
    assert is_self_signed(served_cert(HTTPS_PORT, "a.example.test"))
    print("last_error: %s" % c["last_error"])

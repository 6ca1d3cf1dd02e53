"""nginx: the CA being down at start, the ACME worker being killed or stopped
mid-order."""

import json
import os
import signal
import time

from httpgate import HttpGate
from nginx_server import (HTTP_PORT, HTTPS_PORT, get_status, managed_http_conf,
                          start_managed, status_cert)
from tlsutil import (is_self_signed, same_serial, served_cert, wait_acme_cert,
                     wait_for)

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


# The http-01 server listens here; the gate sits on pebble's httpPort in
# front of it, so a test sees each validation request (the token is
# published then) and decides when the validation gets its answer.
BACKEND_PORT = HTTP_PORT + 1000


def _start_gated(nginx_factory, pebble, state_dir, name="nginx"):
    gate = HttpGate(HTTP_PORT, BACKEND_PORT).start()
    body = managed_http_conf(pebble, state_dir, names="a.example.test").replace(
        "listen 127.0.0.1:%d;" % HTTP_PORT, "listen 127.0.0.1:%d;" % BACKEND_PORT)
    srv = nginx_factory(name)
    srv.write_conf(body)
    srv.start(ports=(HTTPS_PORT, BACKEND_PORT))
    return gate, srv


def _status():
    return get_status(port=BACKEND_PORT)


def _new_holder(old, timeout=30):
    """Waits for a live lease holder other than old; its pid."""
    return wait_for(lambda: (lambda pid: pid if pid not in (None, 0, old) else None)(
        _status()["acme_pid"]), timeout, "a new ACME lease holder than %s" % old)


def _state_json(state_dir):
    with open(os.path.join(state_dir, "certs", CERT_ID, "state.json")) as f:
        return json.load(f)


def test_frozen_lease_holder_keeps_off_new_holders_challenges(
        nginx_factory, pebble_factory, workdir, state_dir):
    """Issue 7 item 3: the lease holder stopped (SIGSTOP) mid-order past the
    lease's expiry; another worker takes over and publishes its own token;
    the old one resumes and must not remove it (fencing by lease
    generation)."""
    p = pebble_factory(authz_reuse=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    gate, srv = _start_gated(nginx_factory, p, state_dir)
    try:
        # the first order's token is published and being validated (held)
        first = gate.wait(lambda r: r[0] if r else None, 60, "the first validation")
        old = _status()["acme_pid"]
        assert old in srv.worker_pids()
        os.kill(old, signal.SIGSTOP)
        try:
            # the lease expires (5 s); another worker takes it and orders anew
            new = _new_holder(old)
            second = gate.wait(lambda r: next((x for x in r if x["path"] != first["path"]),
                                              None), 60, "the new holder's validation")
        finally:
            os.kill(old, signal.SIGCONT)

        # the old holder runs again and finds it lost the lease
        wait_for(lambda: ("worker process %d lost the ACME lease" % old) in srv.error_log(),
                 20, "the resumed worker noticing the lost lease")

        # now the CA's validation of the new token reaches nginx
        gate.open()
        token = second["path"].rsplit("/", 1)[1]
        gate.wait(lambda r: None not in gate.status_of(token), 30, "the validation's answer")
        assert set(gate.status_of(token)) == {200}, gate.requests
        cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=srv.running)
        # pebble's VA asks more than once (several perspectives): all got it
        gate.wait(lambda r: None not in gate.status_of(token), 30, "the validations' answers")
        assert set(gate.status_of(token)) == {200}, gate.requests
        c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
            status_cert(_status())), 20, "state valid")
        assert same_serial(c["serial"], cert.serial_number)
        assert c["consecutive_failures"] == 0, c
        assert _status()["acme_pid"] == new
        log = srv.error_log()
        assert "order aborted" in log
        assert not srv.alerts(), srv.alerts()
    finally:
        gate.stop()


def test_acme_worker_crashing_mid_order_backs_off(nginx_factory, pebble_factory,
                                                  workdir, state_dir):
    """Issue 7 item 5: the lease holder killed (SIGKILL) mid-order counts as
    a failed attempt with backoff (the attempt was recorded in state.json
    before it started); killing the following holders orders nothing more."""
    p = pebble_factory(authz_reuse=0)
    gate, srv = _start_gated(nginx_factory, p, state_dir)
    try:
        gate.wait(lambda r: r, 60, "a validation request (an order in flight)")
        holder = _status()["acme_pid"]
        assert holder in srv.worker_pids()
        assert _state_json(state_dir)["attempt_started"] > 0
        os.kill(holder, signal.SIGKILL)

        def counted():
            c = status_cert(_status())
            return c if c["consecutive_failures"] >= 1 else None

        c = wait_for(counted, 30, "the crashed attempt counted as a failure")
        assert "did not finish" in c["last_error"], c
        assert "the previous attempt did not finish (worker crash?)" in srv.error_log()

        # two more holders killed: nothing is ordered during the backoff
        for _ in range(2):
            holder = _new_holder(holder)
            os.kill(holder, signal.SIGKILL)
        _new_holder(holder)

        def persisted():
            st = _state_json(state_dir)
            return st if st["failures"] >= 1 and st["attempt_started"] == 0 else None

        st = wait_for(persisted, 10, "the failure persisted in state.json")
        assert st["failures"] == 1, st
        assert st["next_attempt"] > time.time(), st
        assert "did not finish" in st["last_error"], st
        assert p.count_requests("/order-plz") == 1
        c = status_cert(_status())
        assert c["consecutive_failures"] == 1, c
        assert c["state"] != "renewing", c
    finally:
        gate.stop()


def test_stop_mid_order_is_not_a_failure(nginx_factory, pebble_factory, workdir,
                                         state_dir):
    """A graceful stop during an order clears the attempt record: the next
    start orders at once instead of counting a crash."""
    p = pebble_factory(authz_reuse=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    gate, srv = _start_gated(nginx_factory, p, state_dir)
    try:
        gate.wait(lambda r: r, 60, "a validation request (an order in flight)")
        assert _state_json(state_dir)["attempt_started"] > 0
        srv.stop()
        st = _state_json(state_dir)
        assert st["attempt_started"] == 0 and st["failures"] == 0, st

        gate.open()
        srv.start(ports=(HTTPS_PORT, BACKEND_PORT))
        wait_acme_cert(HTTPS_PORT, "a.example.test", root, 30, proc_alive=srv.running)
        assert "did not finish" not in srv.error_log()
        st = _state_json(state_dir)
        assert st["failures"] == 0 and st["attempt_started"] == 0, st
    finally:
        gate.stop()


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

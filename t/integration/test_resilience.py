"""nginx and Apache: the CA being down at start (fallback served, failure
reported and backed off, then recovery), an untrusted CA, the process that
drives ACME (nginx: the worker holding the ACME lease; Apache: the child
running the singleton watchdog) killed or stopped, before or in the middle
of an order.  Backoff steps are short here (retry_delay / AcmeRetryDelay)."""

import json
import os
import signal
import time

import pytest

from httpgate import HttpGate
from pebble import HTTP_PORT
from serverlib import status_cert
from tlsutil import (is_self_signed, parse_rfc3339, same_serial, served_cert,
                     wait_acme_cert, wait_for)

# The http-01 server / vhost listens here; the gate sits on pebble's httpPort
# in front of it, so a test sees each validation request (the token is
# published then) and decides when the validation gets its answer.
BACKEND_PORT = HTTP_PORT + 1000
NAME = "a.example.test"


def _state_json(state_dir, cert_id):
    with open(os.path.join(state_dir, "certs", cert_id, "state.json")) as f:
        return json.load(f)


def _failed_once(server):
    c = server.status_cert()
    return c if c["consecutive_failures"] >= 1 and c["last_error"] else None


def test_ca_down_at_start_serves_fallback_then_issues(server, pebble_factory, workdir,
                                                      state_dir):
    p = pebble_factory(start=False)
    p.start_dns()                       # DNS up, the CA itself down
    # the first backoff step (retry_delay) is the wait for the attempt after
    # the CA came up: short, but longer than pebble takes to start
    server.start_managed(p, state_dir, issuer={"retry_delay": "4s"})

    # serving at once, with the in-memory self-signed fallback
    assert is_self_signed(served_cert(server.https_port, NAME))

    c = wait_for(lambda: _failed_once(server), 60, "a failed attempt reported in the status")
    assert c["state"] == "failed", c
    assert c["serial"] is None
    assert c["next_renewal"] is not None
    assert parse_rfc3339(c["next_renewal"]).timestamp() > time.time() - 2
    # the backoff is persisted
    state_json = os.path.join(state_dir, "certs", c["id"], "state.json")
    wait_for(lambda: os.path.exists(state_json), 10, "state.json written")
    # still serving (the fallback)
    assert is_self_signed(served_cert(server.https_port, NAME))

    # the CA comes up: the next attempt (the first backoff step) issues
    p.start_pebble()
    root = p.write_root(os.path.join(workdir, "root.pem"))
    cert = wait_acme_cert(server.https_port, NAME, root, 150, proc_alive=server.running)
    assert not is_self_signed(cert)
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        server.status_cert()), 20, "state valid")
    assert c["consecutive_failures"] == 0
    assert c["last_error"] is None
    assert same_serial(c["serial"], cert.serial_number)
    assert not server.problems(), server.problems()


def test_untrusted_acme_server_is_refused(server, pebble, state_dir):
    """Without ssl_trusted_certificate / AcmeTrustedCA the system store does
    not know pebble's API certificate: no account, no order, the fallback
    stays."""
    text = server.conf(pebble, state_dir)
    server.raw.write_conf("\n".join(l for l in text.splitlines() if pebble.ca_pem not in l))
    server.start()

    c = wait_for(lambda: _failed_once(server), 45, "a failed attempt reported in the status")
    assert c["state"] in ("fallback", "failed"), c
    assert pebble.count_requests("/sign-me-up") == 0
    assert pebble.count_requests("/order-plz") == 0
    assert is_self_signed(served_cert(server.https_port, NAME))
    print("last_error: %s" % c["last_error"])


def test_killed_acme_process_is_replaced(server, pebble, root_file, state_dir):
    """The process driving ACME killed (SIGKILL): another one takes over and
    the certificate arrives (after the first backoff step when the kill hit
    an order in flight: that attempt counts as a failure)."""
    server.configure(processes=3)
    server.start_managed(pebble, state_dir, issuer={"retry_delay": "2s"})
    pid = wait_for(lambda: server.status()["acme_pid"], 20, "a process driving ACME")
    assert pid in server.pids()
    os.kill(pid, signal.SIGKILL)

    wait_acme_cert(server.https_port, NAME, root_file, 150, proc_alive=server.running)
    doc = wait_for(lambda: (lambda d: d if d["acme_pid"] not in (None, 0, pid) and
                            status_cert(d)["state"] == "valid" else None)(server.status()),
                   30, "a new process driving ACME and a valid certificate")
    assert doc["acme_pid"] in server.pids()
    # http-01 and status still answer (no reader stuck on the shared memory)
    assert server.status_cert()["consecutive_failures"] == 0


def _start_gated(server, pebble, state_dir):
    gate = HttpGate(HTTP_PORT, BACKEND_PORT).start()
    try:
        server.use_ports(http_port=BACKEND_PORT)
        server.start_managed(pebble, state_dir, names=[NAME])
    except Exception:
        gate.stop()
        raise
    return gate


def _new_holder(server, old, timeout=60):
    """Waits for a live ACME driver other than old; its pid."""
    return wait_for(lambda: (lambda pid: pid if pid not in (None, 0, old) else None)(
        server.status()["acme_pid"]), timeout, "a new ACME driver than %s" % old)


# nginx only: Apache's singleton watchdog is a mutex a stopped child keeps,
# without a lease that expires
@pytest.mark.parametrize("server", ["nginx"], indirect=True)
def test_frozen_lease_holder_keeps_off_new_holders_challenges(
        server, pebble_factory, workdir, state_dir):
    """Issue 7 item 3: the lease holder stopped (SIGSTOP) mid-order past the
    lease's expiry; another worker takes over and publishes its own token;
    the old one resumes and must not remove it (fencing by lease
    generation)."""
    p = pebble_factory(authz_reuse=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    gate = _start_gated(server, p, state_dir)
    try:
        # the first order's token is published and being validated (held)
        first = gate.wait(lambda r: r[0] if r else None, 60, "the first validation")
        old = server.status()["acme_pid"]
        assert old in server.pids()
        os.kill(old, signal.SIGSTOP)
        try:
            # the lease expires (5 s); another worker takes it and orders anew
            new = _new_holder(server, old, 30)
            second = gate.wait(lambda r: next((x for x in r if x["path"] != first["path"]),
                                              None), 60, "the new holder's validation")
        finally:
            os.kill(old, signal.SIGCONT)

        # the old holder runs again and finds it lost the lease
        wait_for(lambda: ("worker process %d lost the ACME lease" % old) in server.error_log(),
                 20, "the resumed worker noticing the lost lease")

        # now the CA's validation of the new token reaches nginx
        gate.open()
        token = second["path"].rsplit("/", 1)[1]
        gate.wait(lambda r: None not in gate.status_of(token), 30, "the validation's answer")
        assert set(gate.status_of(token)) == {200}, gate.requests
        cert = wait_acme_cert(server.https_port, NAME, root, 60, proc_alive=server.running)
        # pebble's VA asks more than once (several perspectives): all got it
        gate.wait(lambda r: None not in gate.status_of(token), 30, "the validations' answers")
        assert set(gate.status_of(token)) == {200}, gate.requests
        c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
            server.status_cert()), 20, "state valid")
        assert same_serial(c["serial"], cert.serial_number)
        assert c["consecutive_failures"] == 0, c
        assert server.status()["acme_pid"] == new
        log = server.error_log()
        assert "order aborted" in log
        assert not server.problems(), server.problems()
    finally:
        gate.stop()


def test_acme_process_crashing_mid_order_backs_off(server, pebble_factory, state_dir):
    """Issue 7 item 5: the process driving ACME killed (SIGKILL) mid-order
    counts as a failed attempt with backoff (the attempt was recorded in
    state.json before it started); killing the following drivers orders
    nothing more."""
    server.configure(processes=3)
    p = pebble_factory(authz_reuse=0)
    # the gate holds the CA's validation: the order is in flight for sure
    # (its token published) when the driver is killed
    gate = _start_gated(server, p, state_dir)
    try:
        gate.wait(lambda r: r, 60, "a validation request (an order in flight)")
        d = server.status()
        holder, cid = d["acme_pid"], status_cert(d)["id"]
        assert holder in server.pids()
        st = _state_json(state_dir, cid)
        assert st["attempt_started"] > 0 and st["attempt_pid"] == holder, st
        os.kill(holder, signal.SIGKILL)

        def counted():
            c = server.status_cert()
            return c if c["consecutive_failures"] >= 1 else None

        c = wait_for(counted, 60, "the crashed attempt counted as a failure")
        assert c["consecutive_failures"] == 1, c
        assert "did not finish" in c["last_error"], c
        assert "the previous attempt did not finish (worker crash?)" in server.error_log()

        def persisted():
            st = _state_json(state_dir, cid)
            return st if st["failures"] >= 1 and st["attempt_started"] == 0 else None

        # written by the process that counted it (nginx: from the thread
        # pool; one killed before that write leaves the file as it was,
        # and a later lease holder does not write it again)
        wait_for(persisted, 10, "the failure persisted in state.json")

        # more drivers killed (nginx two, Apache one: its parent takes
        # seconds to spawn each new child): nothing is ordered during the
        # backoff
        for _ in range(2 if server.kind == "nginx" else 1):
            holder = _new_holder(server, holder)
            os.kill(holder, signal.SIGKILL)
        _new_holder(server, holder)

        st = wait_for(persisted, 10, "the failure still persisted in state.json")
        assert st["failures"] == 1, st
        assert st["next_attempt"] > time.time(), st
        assert "did not finish" in st["last_error"], st
        assert p.orders_created() == 1     # requests: a badNonce retry is a second POST
        c = server.status_cert()
        assert c["consecutive_failures"] == 1, c
        assert c["state"] != "renewing", c
    finally:
        gate.stop()


def test_stop_mid_order_is_not_a_failure(server, pebble_factory, workdir, state_dir):
    """A graceful stop during an order clears the attempt record: the next
    start orders at once instead of counting a crash."""
    p = pebble_factory(authz_reuse=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    gate = _start_gated(server, p, state_dir)
    try:
        gate.wait(lambda r: r, 60, "a validation request (an order in flight)")
        cid = server.status_cert()["id"]
        assert _state_json(state_dir, cid)["attempt_started"] > 0
        server.stop()
        st = _state_json(state_dir, cid)
        assert st["attempt_started"] == 0 and st["failures"] == 0, st

        gate.open()
        server.start()
        wait_acme_cert(server.https_port, NAME, root, 30, proc_alive=server.running)
        assert "did not finish" not in server.error_log()
        st = _state_json(state_dir, cid)
        assert st["failures"] == 0 and st["attempt_started"] == 0, st
    finally:
        gate.stop()

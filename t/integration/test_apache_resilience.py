"""Apache (mod_acme_auto): the CA down at start (fallback served, failure
reported and backed off, then recovery) and the ACME-driving child killed
(another child takes over; killed mid-order, the attempt counts as a
failure)."""

import json
import os
import signal
import time

from apache_server import (HTTP_PORT, HTTPS_PORT,
                           apache_factory,  # noqa: F401 (fixture)
                           get_status, managed_conf, start_managed, status_cert)
from httpgate import HttpGate
from tlsutil import (is_self_signed, parse_rfc3339, served_cert, wait_acme_cert,
                     wait_for)


def test_ca_down_at_start_then_recovers(apache_factory, pebble_factory, workdir, state_dir):
    p = pebble_factory(start=False)
    p.start_dns()                       # DNS up, the CA itself down
    srv = start_managed(apache_factory(), p, state_dir)

    # served at once with the self-signed placeholder
    cert = served_cert(HTTPS_PORT, "a.example.test")
    assert is_self_signed(cert)

    def failed():
        c = status_cert(get_status())
        return c if c["state"] == "failed" and c["consecutive_failures"] >= 1 else None

    c = wait_for(failed, 60, "the failure in the status")
    assert c["last_error"], c
    assert c["serial"] is None
    assert parse_rfc3339(c["next_renewal"]).timestamp() > time.time() - 2
    st = os.path.join(state_dir, "certs", c["id"], "state.json")
    assert os.path.exists(st), "backoff not persisted"
    # still serving (the placeholder) and no crash
    assert is_self_signed(served_cert(HTTPS_PORT, "a.example.test"))

    # the CA comes back: the next attempt (first backoff step ~1 min) succeeds
    p.start_pebble()
    root = p.write_root(os.path.join(workdir, "root.pem"))
    wait_acme_cert(HTTPS_PORT, "a.example.test", root, 150, proc_alive=srv.running)
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        status_cert(get_status())), 20, "state valid")
    assert c["consecutive_failures"] == 0
    assert c["last_error"] is None
    assert not srv.crashes(), srv.crashes()


def test_killed_acme_child_is_replaced(apache_factory, pebble, root_file, state_dir):
    srv = start_managed(apache_factory(children=3), pebble, state_dir)
    pid = wait_for(lambda: get_status()["acme_pid"], 20, "a child driving ACME")
    assert pid in srv.child_pids()
    os.kill(pid, signal.SIGKILL)

    # another child takes the singleton over and the certificate arrives
    # (after the first backoff step when the kill hit an order in flight:
    # that attempt counts as a failure)
    wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 150, proc_alive=srv.running)
    doc = wait_for(lambda: (lambda d: d if d["acme_pid"] not in (None, pid) and
                            status_cert(d)["state"] == "valid" else None)(get_status()),
                   30, "a new driving child and a valid certificate")
    assert doc["acme_pid"] in srv.child_pids()
    # http-01 and status still answer (no reader stuck on the shared memory)
    assert status_cert(get_status())["consecutive_failures"] == 0


def test_acme_child_crashing_mid_order_backs_off(apache_factory, pebble_factory, state_dir):
    """Issue 7 item 5: the driving child killed (SIGKILL) mid-order counts as
    a failed attempt with backoff (recorded in state.json before the order);
    killing the following drivers orders nothing more."""
    backend = HTTP_PORT + 1000
    p = pebble_factory(authz_reuse=0)
    # the gate on pebble's httpPort holds the CA's validation: the order
    # is in flight for sure (its token published) when the child is killed
    gate = HttpGate(HTTP_PORT, backend).start()
    try:
        srv = apache_factory(children=3, http_port=backend)
        body = managed_conf(p, state_dir, names=("a.example.test",)).replace(
            "<VirtualHost 127.0.0.1:%d>" % HTTP_PORT, "<VirtualHost 127.0.0.1:%d>" % backend)
        srv.write_conf(body)
        srv.start()
        gate.wait(lambda r: r, 60, "a validation request (an order in flight)")
        d = get_status(port=backend)
        pid, cid = d["acme_pid"], status_cert(d)["id"]
        state_json = os.path.join(state_dir, "certs", cid, "state.json")
        with open(state_json) as f:
            st = json.load(f)
        assert st["attempt_started"] > 0 and st["attempt_pid"] == pid, st
        os.kill(pid, signal.SIGKILL)

        def new_driver(old):
            d = get_status(port=backend)
            return d if d["acme_pid"] not in (None, 0, old) else None

        d = wait_for(lambda: new_driver(pid), 60, "another child driving ACME")
        c = status_cert(d)
        assert c["consecutive_failures"] == 1, c
        assert "did not finish" in c["last_error"], c
        assert "the previous attempt did not finish (worker crash?)" in srv.error_log()

        # the next driver killed too: nothing is ordered during the backoff
        pid = d["acme_pid"]
        os.kill(pid, signal.SIGKILL)
        d = wait_for(lambda: new_driver(pid), 60, "another child driving ACME")

        with open(state_json) as f:
            st = json.load(f)
        assert st["failures"] == 1 and st["attempt_started"] == 0, st
        assert st["next_attempt"] > time.time(), st
        assert p.count_requests("/order-plz") == 1
        assert status_cert(get_status(port=backend))["consecutive_failures"] == 1
    finally:
        gate.stop()


def test_stop_mid_order_is_not_a_failure(apache_factory, pebble_factory, workdir, state_dir):
    """A graceful stop during an order clears the attempt record: the next
    start orders at once instead of counting a crash."""
    backend = HTTP_PORT + 1000
    p = pebble_factory(authz_reuse=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    gate = HttpGate(HTTP_PORT, backend).start()
    try:
        srv = apache_factory(http_port=backend)
        body = managed_conf(p, state_dir, names=("a.example.test",)).replace(
            "<VirtualHost 127.0.0.1:%d>" % HTTP_PORT, "<VirtualHost 127.0.0.1:%d>" % backend)
        srv.write_conf(body)
        srv.start()
        gate.wait(lambda r: r, 60, "a validation request (an order in flight)")
        cid = status_cert(get_status(port=backend))["id"]
        state_json = os.path.join(state_dir, "certs", cid, "state.json")
        srv.stop()
        with open(state_json) as f:
            st = json.load(f)
        assert st["attempt_started"] == 0 and st["failures"] == 0, st

        gate.open()
        srv.start()
        wait_acme_cert(HTTPS_PORT, "a.example.test", root, 30, proc_alive=srv.running)
        assert "did not finish" not in srv.error_log()
    finally:
        gate.stop()

"""nginx and Apache (issue 16): a renewed certificate whose notBefore is
ahead of this server's clock (a CA whose clock runs ahead) does not replace
a valid one: it is stored at once, the valid one is still served, the
status shows the pending certificate and when it will be served, and the
error log warns once about the clock difference; a restart serves the
valid one too (the store keeps it as previous.pem).  Without a current
certificate a not-yet-valid one is served at once (better than the
self-signed fallback).  The CA is real pebble behind ca_proxy.py, whose
"future" mode hands out leaves valid from now + 2 h."""

import datetime
import os

from ca_proxy import FUTURE_AHEAD, CaProxy, cert_id
from servers import HTTPS_PORT
from serverlib import status_cert
from tlsutil import (load_pem_certs, parse_rfc3339, same_serial, served_cert,
                     wait_acme_cert, wait_for)

VALIDITY = 60           # pebble certificateValidityPeriod, seconds
# clock_skew / AcmeClockSkew: the leaf valid from now + 2 h is served ~20 s
# after it is issued (sooner when the served one expires first), time for a
# restart in between
SKEW = int(FUTURE_AHEAD.total_seconds()) - 20
# renew when 90 % of the lifetime remains: ~6 s after issuance (jitter up
# to 3 s); the pending certificate's renewal is hours away
ISSUER = {"renew_before_expiry": "90%", "clock_skew": "%ds" % SKEW}
A = cert_id("a.example.test")
C = cert_id("c.example.test")


def _stored_leaf(state_dir, cid):
    with open(os.path.join(state_dir, "certs", cid, "bundle.pem")) as f:
        return load_pem_certs(f.read())[0]


def _not_before(cert):
    return cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def test_future_certificate_waits_for_its_not_before(server, pebble_factory, workdir,
                                                     state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p).start()
    try:
        # "c" has no certificate yet: its first one, not valid for 2 h, is
        # served at once
        proxy.modes["c.example.test"] = "future"
        server.start_managed(proxy, state_dir, issuer=ISSUER,
                             more=[server.vhost(["c.example.test"])])
        first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                               proc_alive=server.running)
        # a renewal from now on gets a leaf valid from now + 2 h
        proxy.modes["a.example.test"] = "future"

        def c_served():
            c = status_cert(server.status(), C)
            leaf = served_cert(HTTPS_PORT, "c.example.test")
            return leaf if c["serial"] and same_serial(c["serial"], leaf.serial_number) else None
        c_leaf = wait_for(c_served, 60, "c's first certificate served")
        assert ("c.example.test", "future") in proxy.rewritten
        assert _not_before(c_leaf) > datetime.datetime.now(datetime.timezone.utc)
        c = status_cert(server.status(), C)
        assert c["state"] == "valid" and c["pending"] is None, c

        def a_pending():
            doc = server.status()
            a = status_cert(doc, A)
            return (doc, a) if a["pending"] else None
        doc, a = wait_for(a_pending, VALIDITY, "a pending certificate for a")
        now = parse_rfc3339(doc["generated_at"])
        pend = a["pending"]
        nb = parse_rfc3339(pend["not_before"])
        # the leaf ca_proxy minted: 2 h ahead (give or take the test's own time)
        assert FUTURE_AHEAD - datetime.timedelta(minutes=5) < nb - now <= FUTURE_AHEAD, pend
        at = parse_rfc3339(pend["activate_at"])
        assert at == min(nb - datetime.timedelta(seconds=SKEW), parse_rfc3339(a["not_after"])), a
        assert at > now, a
        assert parse_rfc3339(pend["not_after"]) > nb

        # stored at once ...
        stored = _stored_leaf(state_dir, A)
        assert same_serial(pend["serial"], stored.serial_number)
        assert _not_before(stored) == nb
        # ... the valid one still served and shown, no failure counted
        assert a["state"] == "valid", a
        assert a["consecutive_failures"] == 0 and a["last_error"] is None, a
        assert not same_serial(a["serial"], pend["serial"]), a
        served = served_cert(HTTPS_PORT, "a.example.test", cafile=root)
        assert same_serial(a["serial"], served.serial_number)
        assert _not_before(served) <= now
        # not ordered again: the next renewal is the pending one's (the
        # scheduler's next tick)
        wait_for(lambda: parse_rfc3339(status_cert(server.status(), A)["next_renewal"]) > nb,
                 20, "the next renewal after the pending certificate's notBefore")

        # one warning naming the clock difference, for "a" only
        log = server.error_log()
        lines = [ln for ln in log.splitlines() if "ahead of this server's clock" in ln]
        assert len(lines) == 1, lines
        assert A in lines[0] and "is not valid before %s" % pend["not_before"] in lines[0], lines
        assert "served from %s" % pend["activate_at"] in lines[0], lines

        # a restart: the store kept the certificate it replaced
        # (previous.pem), served again until the same activation time
        assert os.path.exists(os.path.join(state_dir, "certs", A, "previous.pem"))
        server.stop()
        server.start()
        a2 = wait_for(lambda: status_cert(server.status(), A)["pending"] and
                      status_cert(server.status(), A), 20, "the pending certificate after a restart")
        assert a2["pending"] == pend, a2
        assert same_serial(a2["serial"], a["serial"]), a2
        assert "ahead of this server's clock" in server.error_log(since_start=True)
        c = status_cert(server.status(), C)
        assert same_serial(c["serial"], c_leaf.serial_number) and c["pending"] is None, c

        # until its activation time the valid one is served, no new order;
        # then the pending one, in every worker / child
        orders = p.orders_created()
        seen_old = 0

        def activated():
            nonlocal seen_old
            leaf = served_cert(HTTPS_PORT, "a.example.test")
            t = parse_rfc3339(server.status()["generated_at"])
            if same_serial(pend["serial"], leaf.serial_number):
                return leaf
            if t < at:
                assert same_serial(a["serial"], leaf.serial_number), (a, leaf)
                seen_old += 1
            return None
        wait_for(activated, 90, "the pending certificate served", interval=0.5)
        assert seen_old >= 1
        # every worker / child (each switches on its own one-second timer;
        # the harness' wait_installed counts generations, which a restart
        # starts again)
        wait_for(lambda: all(same_serial(pend["serial"],
                                         served_cert(HTTPS_PORT, "a.example.test").serial_number)
                             for _ in range(10)), 20, "every worker / child serving it")
        a = status_cert(server.status(), A)
        assert same_serial(a["serial"], pend["serial"]) and a["pending"] is None, a
        assert a["not_before"] == pend["not_before"] and a["consecutive_failures"] == 0, a
        assert parse_rfc3339(a["next_renewal"]) > nb, a
        assert p.orders_created() == orders
        assert "waited for its notBefore is served now" in server.error_log()
        assert not server.problems(), server.problems()
    finally:
        proxy.stop()


def test_clock_skew_bad_value(server, pebble_factory, state_dir):
    """clock_skew / AcmeClockSkew: 1 s to 1 day; another value is a
    configuration error naming the directive and its line."""
    p = pebble_factory(start=False)
    server.write_managed(p, state_dir, issuer={"clock_skew": "2d"})
    rc, out = server.test_config()
    assert rc != 0, out
    word = "clock_skew" if server.kind == "nginx" else "AcmeClockSkew"
    assert word in out, out
    line = server.conf_line(word)
    assert ":%d" % line in out or "line %d" % line in out, (line, out)

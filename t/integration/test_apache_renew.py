"""Apache (mod_acme_auto): renewal swaps the served certificate in every child
without a restart, under mpm_event and mpm_prefork, while a bounded client
loop of full handshakes sees no failure."""

import pytest
from cryptography import x509

from apache_server import (HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status, start_managed, status_cert)
from tlsutil import (Hammer, handshake, hammer_through_renewal, same_serial, sans, served_cert,
                     wait_acme_cert, wait_for)

VALIDITY = 90           # pebble certificateValidityPeriod, seconds
RENEW = "    AcmeRenewBeforeExpiry 66%"     # ~30 s after issuance


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_renewal_hot_swap_without_restart(mpm, apache_factory, pebble_factory, workdir,
                                          state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(workdir + "/root.pem")
    srv = start_managed(apache_factory(mpm=mpm, children=3), p, state_dir,
                        issuer_extra=RENEW)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=srv.running)
    parent = srv.parent_pid

    new, hammers = hammer_through_renewal(HTTPS_PORT, root, first.serial_number,
                                          VALIDITY + 60, 30)
    for h in hammers:
        assert h.failures == [], "%d failed handshakes of %d, e.g. %s" % (
            len(h.failures), h.ok + len(h.failures), h.failures[:3])
        assert h.count(new.serial_number) >= 1
    assert sans(new) == ["a.example.test", "b.example.test"]

    # no restart: same parent, one configuration generation, no crashes
    assert srv.parent_pid == parent and srv.running()
    assert srv.error_log().count("resuming normal operations") == 1
    assert not srv.crashes(), srv.crashes()

    # each child parsed each new certificate exactly once (thousands of
    # handshakes above did not parse anything)
    installs = srv.installs()
    assert installs, "no 'installed' lines in the log"
    assert all(n == 1 for n in installs.values()), installs

    # each child polls the shared generation once a second and parses off
    # the handshake path: once every live child has installed the newest
    # generation, every fresh connection gets the new certificate
    def every_child_installed():
        inst = srv.installs()
        top = max(g for (_, g) in inst)
        return set(srv.child_pids()) <= {pid for (pid, g) in inst if g == top}
    wait_for(every_child_installed, 20, "the new certificate installed in every child")
    for _ in range(40):
        der = handshake(HTTPS_PORT, "a.example.test", cafile=root)
        assert x509.load_der_x509_certificate(der).serial_number != first.serial_number

    wait_for(lambda: same_serial(status_cert(get_status())["serial"],
                                 served_cert(HTTPS_PORT, "a.example.test").serial_number),
             20, "status serial == served serial")
    assert status_cert(get_status())["consecutive_failures"] == 0


def test_graceful_restarts_under_load_keep_the_certificate(apache_factory, pebble, root_file,
                                                           state_dir):
    srv = start_managed(apache_factory(), pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60,
                           proc_alive=srv.running)
    parent = srv.parent_pid
    h = Hammer(HTTPS_PORT, root_file, max_seconds=120)
    h.start()
    try:
        for _ in range(2):
            before = h.ok
            srv.graceful()
            wait_for(lambda: h.ok >= before + 50 or not h.is_alive(), 60,
                     "handshakes after the graceful restart")
    finally:
        h.stop_event.set()
        h.join(30)
    print("hammer: %d handshakes, %d failed" % (h.ok + len(h.failures), len(h.failures)))
    assert h.failures == [], h.failures[:3]
    assert set(h.serials) == {first.serial_number}     # the stored one, every time
    assert srv.parent_pid == parent
    assert not srv.crashes(), srv.crashes()

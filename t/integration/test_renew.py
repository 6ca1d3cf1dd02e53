"""nginx and Apache: renewal swaps the served certificate in every worker /
child without a reload or restart, while bounded client loops of full
handshakes see no failure; Apache: graceful restarts under load."""

import os

import pytest
from cryptography import x509

from servers import HTTPS_PORT
from tlsutil import (Hammer, handshake, hammer_through_renewal, same_serial, sans,
                     served_cert, wait_acme_cert, wait_for)

VALIDITY = 60          # pebble certificateValidityPeriod, seconds
# renew when 75% of the lifetime remains: ~15 s after issuance (jitter up
# to 3 s earlier), time for the clients to start; the renewed one's own
# renewal is as far off, after the checks that follow the swap
RENEW = {"renew_before_expiry": "75%"}


# Apache under mpm_event and mpm_prefork, with 3 children; nginx with 2 workers
@pytest.mark.parametrize("server", ["nginx", "apache", "apache-prefork"], indirect=True)
def test_renewal_hot_swap_without_reload(server, pebble_factory, workdir, state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    if server.kind == "apache":
        server.configure(children=3)
    server.start_managed(p, state_dir, issuer=RENEW)

    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=server.running)
    server.wait_installed()     # an Apache child that has not polled yet serves the placeholder
    pids = server.pids()
    main_pid = server.main_pid
    log_before = len(server.error_log())

    # the renewed certificate reaches the clients (no reload, no restart)
    new, hammers = hammer_through_renewal(HTTPS_PORT, root, first.serial_number,
                                          VALIDITY + 60, 50 if server.kind == "nginx" else 30)
    for h in hammers:
        assert h.failures == [], "%d failed handshakes of %d, e.g. %s" % (
            len(h.failures), h.ok + len(h.failures), h.failures[:3])
        assert h.count(new.serial_number) >= 1
    assert sans(new) == ["a.example.test", "b.example.test"]

    # same master / parent, one configuration generation, no crashes
    assert server.main_pid == main_pid and server.running()
    assert server.generations() == 1
    log = server.error_log()[log_before:]
    assert "reconfiguring" not in log
    assert "exited on signal" not in log
    assert not server.problems(), server.problems()
    if server.kind == "nginx":
        # same workers
        assert server.pids() == pids
    else:
        # each child parsed each new certificate exactly once (thousands of
        # handshakes above did not parse anything)
        installs = server.raw.installs()
        assert installs, "no 'installed' lines in the log"
        assert all(n == 1 for n in installs.values()), installs

    # every worker / child serves the new one (each has its own copy): once
    # every live one has it, many fresh connections spread over them
    server.wait_installed()
    for _ in range(40):
        der = handshake(HTTPS_PORT, "a.example.test", cafile=root)
        assert x509.load_der_x509_certificate(der).serial_number != first.serial_number

    wait_for(lambda: same_serial(server.status_cert()["serial"],
                                 served_cert(HTTPS_PORT, "a.example.test").serial_number),
             20, "status serial == served serial")
    assert server.status_cert()["consecutive_failures"] == 0
    assert not server.problems(), server.problems()


def test_reloads_under_load_keep_the_certificate(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir)
    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60,
                           proc_alive=server.running)
    server.wait_installed()     # an Apache child that has not polled yet serves the placeholder
    main_pid = server.main_pid
    h = Hammer(HTTPS_PORT, root_file, max_seconds=120)
    h.start()
    try:
        for _ in range(2):
            before = h.ok
            server.reload()
            wait_for(lambda: h.ok >= before + 50 or not h.is_alive(), 60,
                     "handshakes after the reload / graceful restart")
    finally:
        h.stop_event.set()
        h.join(30)
    print("hammer: %d handshakes, %d failed" % (h.ok + len(h.failures), len(h.failures)))
    assert h.failures == [], h.failures[:3]
    assert set(h.serials) == {first.serial_number}     # the stored one, every time
    assert server.main_pid == main_pid
    assert not server.problems(), server.problems()

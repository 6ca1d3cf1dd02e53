"""nginx and Apache: an issued certificate is never lost because the store
cannot be written (issue 10 item 3).  The issue's input: the store on a
256 KiB tmpfs (mounted in the server's own mount namespace, storeplant.
tmpfs_cmd) that is filled after the first issuance, with short
certificates: the renewal's bundle write fails with ENOSPC.  The renewed
certificate is served by every worker / child from memory, the status and
the error log say the store is failing, no second order is made, and the
bundle is written once there is space again."""

import os

import pytest

from servers import HTTPS_PORT
from storeplant import check_memory_only, fill, in_ns, stored_serial, tmpfs_cmd
from tlsutil import same_serial, served_cert, wait_acme_cert, wait_for

VALIDITY = 60                               # pebble: 60-second certificates
# renewal ~20 s after issuance (jitter up to 3 s earlier), as in
# test_store_errors.py: the renewed certificate's own renewal is as far
# off, later than the write from memory (the first retry, 10 s after the
# refused write) and the checks after it, so one order is all
RENEW = {"renew_before_expiry": "66%"}
CID = "a.example.test_ecdsa-256"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)")


def _stored_serial(store):
    return stored_serial(store, CID)


def test_renewal_on_a_full_tmpfs_is_served_then_stored(server, pebble_factory,
                                                       workdir, state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    os.makedirs(state_dir)
    server.write_managed(p, state_dir, issuer=RENEW)
    cmd = server.raw.cmd
    server.raw.cmd = lambda *args: tmpfs_cmd(cmd(*args), state_dir, "256k")
    server.start()
    store = in_ns(server.main_pid, state_dir)

    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=server.running)
    wait_for(lambda: _stored_serial(store) == first.serial_number, 30,
             "the first certificate is stored")
    orders = p.orders_created()
    log_at = len(server.error_log())

    # the file system fills up; the renewal's bundle write fails (ENOSPC)
    filler = os.path.join(store, "fill")
    assert fill(filler) > 0

    def renewed():
        c = served_cert(HTTPS_PORT, "a.example.test", cafile=root)
        return c if c.serial_number != first.serial_number else None
    new = wait_for(renewed, VALIDITY, "the renewed certificate is served")

    # served by every worker / child, valid with its serial, the store's error shown
    server.wait_installed()
    check_memory_only(server, HTTPS_PORT, "a.example.test", root, CID,
                      new.serial_number, "No space left on device", log_at)
    assert _stored_serial(store) == first.serial_number
    assert p.orders_created() == orders + 1
    # nothing half-written is left taking the space
    cdir = os.path.join(store, "certs", CID)
    assert not [n for n in os.listdir(cdir) if ".tmp" in n], os.listdir(cdir)

    # a reload / graceful restart (logrotate's daily one) keeps serving it
    # and orders nothing: the bundle is still only in memory
    server.reload()
    wait_for(lambda: all(served_cert(HTTPS_PORT, "a.example.test", cafile=root)
                         .serial_number == new.serial_number for _ in range(10)),
             20, "the renewed certificate served after the reload")
    c = server.status_cert(CID)
    assert same_serial(c["serial"], new.serial_number), c
    assert "not stored" in (c["store_error"] or ""), c
    assert p.orders_created() == orders + 1

    # space again: the served certificate is written from memory, no new order
    os.unlink(filler)
    wait_for(lambda: _stored_serial(store) == new.serial_number, 60,
             "the renewed certificate is stored")
    assert p.orders_created() == orders + 1
    wait_for(lambda: not server.status_cert(CID)["store_error"], 30, "store_error clears")
    assert "stored now" in server.error_log()[log_at:]
    assert not server.problems(), server.problems()

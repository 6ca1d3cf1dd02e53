"""nginx and Apache: nothing the CA gave us is lost or asked for twice,
whatever write error the store gives (issue 10 item 3; ENOSPC is
test_store_full.py).

- EROFS, for real: the store's tmpfs (in the server's own mount namespace)
  is remounted read-only after the first issuance; the renewal is served
  from memory by every worker / child, the status and the log say why, no
  second order, and it is written once the file system is writable again.
- EIO and EDQUOT on write() and EIO on fsync(), from an LD_PRELOAD shim
  (faultshim.c) that fails those calls on paths below the store while a
  flag file says so: one certificate per kind, renewed together, each
  served from memory with its errno in the status, one order each, all
  written once the faults stop.
- The account: account.key cannot be written (EIO): the attempt fails
  before anything is asked of the CA.  account.json cannot be written after
  the CA created the account (EIO); the URL is kept in memory, the orders of every
  certificate and their renewals use it (pebble has one account), and
  the write is retried by the next order until account.json is stored."""

import json
import os
import subprocess

import pytest

from servers import HTTPS_PORT
from storeplant import check_memory_only, in_ns, remount_fs, stored_serial, tmpfs_cmd
from tlsutil import served_cert, wait_acme_cert, wait_for

VALIDITY = 60                               # pebble: 60-second certificates
RENEW = {"renew_before_expiry": "66%"}      # renewal ~20 s after issuance
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faultshim.c")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)")


def _cid(name):
    return name + "_ecdsa-256"


def test_renewal_on_a_read_only_file_system(server, pebble_factory, workdir,
                                            state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    cid = _cid("a.example.test")
    os.makedirs(state_dir)
    server.write_managed(p, state_dir, issuer=RENEW)
    cmd = server.raw.cmd
    server.raw.cmd = lambda *args: tmpfs_cmd(cmd(*args), state_dir, "1m")
    server.start()
    store = in_ns(server.main_pid, state_dir)

    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=server.running)
    wait_for(lambda: stored_serial(store, cid) == first.serial_number, 30,
             "the first certificate is stored")
    orders = p.orders_created()
    log_at = len(server.error_log())

    # the file system itself turns read-only: the renewal's writes fail (EROFS)
    remount_fs(server.main_pid, state_dir, ro=True)

    def renewed():
        c = served_cert(HTTPS_PORT, "a.example.test", cafile=root)
        return c if c.serial_number != first.serial_number else None
    new = wait_for(renewed, VALIDITY, "the renewed certificate is served")

    server.wait_installed()
    check_memory_only(server, HTTPS_PORT, "a.example.test", root, cid,
                      new.serial_number, "Read-only file system", log_at)
    assert stored_serial(store, cid) == first.serial_number
    assert p.orders_created() == orders + 1

    # writable again: written from memory, no new order
    remount_fs(server.main_pid, state_dir, ro=False)
    wait_for(lambda: stored_serial(store, cid) == new.serial_number, 60,
             "the renewed certificate is stored")
    wait_for(lambda: not server.status_cert(cid)["store_error"], 30, "store_error clears")
    assert p.orders_created() == orders + 1
    assert "stored now" in server.error_log()[log_at:]
    assert not server.problems(), server.problems()


# certificate -> the fault its renewal meets: (call, errno, strerror)
FAULTS = {"a.example.test": ("write", 5, "Input/output error"),          # EIO
          "b.example.test": ("write", 122, "Disk quota exceeded"),       # EDQUOT
          "c.example.test": ("fsync", 5, "Input/output error")}          # EIO


def _shim(workdir):
    so = os.path.join(workdir, "faultshim.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", so, SHIM, "-ldl"],
                   check=True, timeout=60)
    return so


def _set_faults(flag, lines):
    with open(flag + ".new", "w") as f:
        f.write("".join("%s %s %d\n" % ln for ln in lines))
    os.chmod(flag + ".new", 0o644)          # read by the workers (www-data)
    os.rename(flag + ".new", flag)


def _account_url(state_dir):
    try:
        with open(os.path.join(state_dir, "account.json")) as f:
            return json.load(f).get("url")
    except (OSError, ValueError):
        return None


def test_write_errors_lose_nothing(server, pebble_factory, workdir, state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    flag = os.path.join(workdir, "faults")
    server.raw.extra_env = {"LD_PRELOAD": _shim(workdir),
                            "ACME_FAULT_DIR": state_dir + "/",
                            "ACME_FAULT_FLAG": flag}
    # neither the account key nor, later, the account's URL can be stored
    # (EIO on their writes)
    _set_faults(flag, [("account.key", "write", 5), ("account.json", "write", 5)])
    server.write_certs(p, state_dir, [([n], "") for n in FAULTS],
                       issuer=dict(RENEW, retry_delay="2s"))
    server.start()

    # the key is written before the CA sees it: the attempt fails, nothing
    # was asked of the CA
    def key_refused():
        c = server.status_cert(_cid("a.example.test"))
        return c if "Input/output error" in (c["last_error"] or "") else None
    c = wait_for(key_refused, 30, "the account key's write error in the status")
    assert "account key" in c["last_error"], c
    assert p.count_requests("/sign-me-up") == 0 and p.accounts_created() == 0
    assert not os.path.exists(os.path.join(state_dir, "account.key"))
    _set_faults(flag, [("account.json", "write", 5)])

    first = {n: wait_acme_cert(HTTPS_PORT, n, root, 60, proc_alive=server.running)
             for n in FAULTS}
    for n in FAULTS:
        wait_for(lambda: stored_serial(state_dir, _cid(n)) == first[n].serial_number,
                 30, "the first certificate of %s is stored" % n)
    assert p.accounts_created() == 1
    assert _account_url(state_dir) is None
    assert "account URL" in server.error_log(), server.error_log()
    orders = p.orders_created()
    log_at = len(server.error_log())

    # account.json can be written again; every certificate's renewal meets
    # its own write error
    _set_faults(flag, [("/" + _cid(n), call, e) for n, (call, e, _) in FAULTS.items()])

    def renewed(n):
        c = served_cert(HTTPS_PORT, n, cafile=root)
        return c if c.serial_number != first[n].serial_number else None
    new = {n: wait_for(lambda: renewed(n), VALIDITY, "%s renewed and served" % n)
           for n in FAULTS}

    server.wait_installed()
    for n, (call, e, text) in FAULTS.items():
        c = check_memory_only(server, HTTPS_PORT, n, root, _cid(n),
                              new[n].serial_number, text, log_at, handshakes=10)
        assert call in c["store_error"], c
        assert stored_serial(state_dir, _cid(n)) == first[n].serial_number
        cdir = os.path.join(state_dir, "certs", _cid(n))
        assert not [f for f in os.listdir(cdir) if ".tmp" in f], os.listdir(cdir)
    # one order per renewal, one account, whose URL the renewals stored
    assert p.orders_created() == orders + len(FAULTS)
    assert p.accounts_created() == 1
    assert _account_url(state_dir), "account.json written by a later order"

    # the faults stop: everything served is written from memory, no new order
    os.unlink(flag)
    for n in FAULTS:
        wait_for(lambda: stored_serial(state_dir, _cid(n)) == new[n].serial_number,
                 60, "the renewed certificate of %s is stored" % n)
        wait_for(lambda: not server.status_cert(_cid(n))["store_error"], 30,
                 "store_error of %s clears" % n)
    assert p.orders_created() == orders + len(FAULTS)
    assert p.accounts_created() == 1
    assert not server.problems(), server.problems()

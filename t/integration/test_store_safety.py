"""nginx and Apache: the root master / parent never follows what the worker
/ child user planted in the store (issue 7 item 1), a read-only state_path /
AcmeStateDir does not stop the start (issue 7 item 6), and a certificate
issued while the store refuses writes is served all the same and stored
once it can be.

The master / parent runs as root with "user www-data" / "User www-data"
(nginx_server.py, apache_server.py), as in production.  What www-data could
plant is made here by root and lchown'd to www-data; the hard link is made
by root too (fs.protected_hardlinks would stop www-data, but not on every
system).  Apache's parent reads the store at every start and graceful
restart; what it hands to mod_ssl is a root-only copy below
DefaultRuntimeDir, never a path in the store."""

import json
import os
import stat
from types import SimpleNamespace

import pytest

from servers import HTTPS_PORT
from storeplant import (WORKER, as_worker, bundle_pem, fingerprint, read_only_cmd,
                        remount, remountable_cmd,
                        root_only_file, subject_cn, worker_dir)
from tlsutil import (is_self_signed, load_pem_certs, same_serial, served_cert,
                     wait_acme_cert, wait_for)

NAMES = ("a.example.test", "b.example.test", "c.example.test")

# the planted files belong to www-data and the read-only mount needs a mount
# namespace: both need root (as the server's own user switch does)
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _id(name):
    return name + "_ecdsa-256"


def _write_conf(server, ca_pem, state_dir):
    """One certificate per name, each its own server / vhost; the CA is
    never reached (port 1)."""
    ca = SimpleNamespace(directory_url="https://127.0.0.1:1/dir", ca_pem=ca_pem)
    server.write_managed(ca, state_dir, names=NAMES[:1], issuer={"timeout": "2s"},
                         more=[server.vhost([n]) for n in NAMES[1:]])


def _not_planted(name):
    cert = served_cert(HTTPS_PORT, name)
    assert is_self_signed(cert)
    assert subject_cn(cert) != "planted", "the planted bundle is served for " + name
    return cert


def test_planted_links_are_not_followed(server, pebble_factory, workdir, state_dir):
    ca = pebble_factory(start=False).ca_pem        # the CA is never reached

    # root's secrets: a root-only directory, two root-only key + certificate
    # files (valid bundles for b and c), a root-only account key
    secret = os.path.join(workdir, "secret")
    os.mkdir(secret, 0o700)
    root_dir = os.path.join(secret, "keys")
    os.mkdir(root_dir, 0o700)
    root_only_file(os.path.join(root_dir, "keep.pem"), "root's own\n")
    b_secret = root_only_file(os.path.join(secret, "b.pem"),
                              bundle_pem("b.example.test", "planted"))
    c_secret = root_only_file(os.path.join(secret, "c.pem"),
                              bundle_pem("c.example.test", "planted"))
    key_secret = root_only_file(os.path.join(secret, "account.key"),
                                bundle_pem("x.test", "planted").split("-----BEGIN CERT")[0])

    # planted before the start, as www-data could have done it
    worker_dir(state_dir)
    certs = worker_dir(os.path.join(state_dir, "certs"))
    os.symlink(key_secret, os.path.join(state_dir, "account.key"))
    as_worker(os.path.join(state_dir, "account.key"))
    b_dir = worker_dir(os.path.join(certs, _id("b.example.test")))
    os.symlink(b_secret, os.path.join(b_dir, "bundle.pem"))
    as_worker(os.path.join(b_dir, "bundle.pem"))
    c_dir = worker_dir(os.path.join(certs, _id("c.example.test")))
    os.link(c_secret, os.path.join(c_dir, "bundle.pem"))
    before = fingerprint(secret)

    _write_conf(server, ca, state_dir)
    server.start()

    # the master / parent refused both bundles: the fallback is served, the
    # log and the status name the refused file
    def check_bundles_refused(after_reload=False):
        if after_reload and server.kind == "nginx":
            # nginx: a reload keeps the certificates' state from the zone and
            # does not read the refused bundles again (nor log or show
            # store_error anew): only the fallback is served
            for name in NAMES[1:]:
                _not_planted(name)
            return
        for name, why in (("b.example.test", "is a symbolic link, refused"),
                          ("c.example.test", "has 2 hard links, refused")):
            _not_planted(name)
            path = os.path.join(certs, _id(name), "bundle.pem")
            assert '"%s" %s' % (path, why) in server.error_log(), server.error_log()
            c = server.status_cert(_id(name))
            assert c["serial"] is None, c
            if server.kind == "nginx":
                assert c["state"] in ("fallback", "failed"), c
            # the latest refusal: this bundle's, or the account key's once
            # the worker's / driving child's order tried it
            assert "refused" in (c["store_error"] or ""), c

    check_bundles_refused()

    if server.kind == "apache":
        # mod_ssl got root-only copies outside the store, nothing in the store
        run = os.path.join(server.raw.dir, "run", "acme_auto")
        st = os.stat(run)
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700
        for n in NAMES:
            p = os.path.join(run, _id(n) + ".fallback.pem")
            st = os.stat(p)
            assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600, p
        assert not os.path.exists(os.path.join(b_dir, "fallback.pem"))

    # the worker / child refuses the symlinked account key: no order, the key stays
    def key_refused():
        c = server.status_cert(_id("a.example.test"))
        return c if c["last_error"] and "account.key" in c["last_error"] else None

    c = wait_for(key_refused, 30, "the account key refused in the status")
    assert "symbolic link" in c["last_error"], c

    # the case: www-data swaps a certificate directory for a symlink
    # to a root-owned directory, then the master reloads / a graceful restart
    a_dir = os.path.join(certs, _id("a.example.test"))
    assert os.stat(a_dir).st_uid == WORKER.pw_uid
    os.rename(a_dir, a_dir + ".old")
    os.symlink(root_dir, a_dir)
    as_worker(a_dir)
    server.reload()
    assert '"%s" is a symbolic link, refused' % a_dir in server.error_log(), server.error_log()
    check_bundles_refused(after_reload=True)

    # a second reload changes nothing either
    server.reload()
    assert fingerprint(secret) == before
    assert os.stat(root_dir).st_uid == 0
    assert os.path.islink(os.path.join(state_dir, "account.key"))
    assert not server.problems(), server.problems()


def test_read_only_state_dir_at_start(server, pebble_factory, state_dir):
    ca = pebble_factory(start=False).ca_pem
    # a valid certificate is on disk, as the worker / child stored it
    cert_dir = worker_dir(os.path.join(worker_dir(os.path.join(
        worker_dir(state_dir), "certs")), _id("a.example.test")))
    bundle = os.path.join(cert_dir, "bundle.pem")
    with open(bundle, "w") as f:
        f.write(bundle_pem("a.example.test", "stored"))
    os.chmod(bundle, 0o600)
    as_worker(bundle)

    _write_conf(server, ca, state_dir)
    cmd = server.raw.cmd
    server.raw.cmd = lambda *args: read_only_cmd(cmd(*args), state_dir)

    rc, out = server.test_config()
    assert rc == 0, out
    assert "read-only file system" in out, out

    server.start()
    cert = served_cert(HTTPS_PORT, "a.example.test")
    assert subject_cn(cert) == "stored"
    c = server.status_cert(_id("a.example.test"))
    assert c["state"] == "valid", c
    assert "read-only file system" in (c["store_error"] or "").lower(), c
    log = server.error_log()
    assert "read-only file system" in log, log
    assert "[emerg]" not in log, log
    # the other certificates cannot even get their directories: fallback
    b = server.status_cert(_id("b.example.test"))
    assert "read-only file system" in (b["store_error"] or "").lower(), b
    assert is_self_signed(served_cert(HTTPS_PORT, "b.example.test"))
    assert not server.problems(), server.problems()


def _stored_serial(state_dir, cert_id):
    with open(os.path.join(state_dir, "certs", cert_id, "bundle.pem")) as f:
        return load_pem_certs(f.read())[0].serial_number


def test_issued_while_read_only_is_served_then_stored(server, pebble_factory,
                                                       workdir, state_dir):
    p = pebble_factory()
    root = p.write_root(os.path.join(workdir, "root.pem"))
    cid = _id("a.example.test")
    worker_dir(state_dir)

    server.write_managed(p, state_dir)
    cmd = server.raw.cmd
    server.raw.cmd = lambda *args: remountable_cmd(cmd(*args), state_dir)
    server.start()

    first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60, proc_alive=server.running)
    wait_for(lambda: _stored_serial(state_dir, cid) == first.serial_number, 30,
             "the first certificate is stored")
    orders = p.orders_created()

    # the store becomes read-only at run time; a new name makes the next
    # order due at once (the certificate's names differ from the config's)
    remount(server.main_pid, state_dir, ro=True)
    log_at = len(server.error_log())
    server.write_managed(p, state_dir, names=NAMES)
    server.reload()

    def new_served():
        return served_cert(HTTPS_PORT, "a.example.test", cafile=root).serial_number \
            != first.serial_number
    wait_for(new_served, 60, "the certificate issued after the remount is served")
    new = served_cert(HTTPS_PORT, "a.example.test", cafile=root)

    # served by every worker / child, shown as valid with its serial and the reason
    for _ in range(20):
        assert served_cert(HTTPS_PORT, "a.example.test",
                           cafile=root).serial_number == new.serial_number
    c = server.status_cert(cid)
    assert c["state"] == "valid", c
    assert same_serial(c["serial"], new.serial_number), c
    assert "not stored" in (c["store_error"] or ""), c
    assert "read-only file system" in c["store_error"].lower(), c
    assert c["consecutive_failures"] == 0, c
    log = server.error_log()[log_at:]
    line = [ln for ln in log.splitlines() if "served from memory only" in ln]
    level = "[error]" if server.kind == "nginx" else ":error]"
    assert line and level in line[0] and state_dir in line[0], log
    # nothing reached the disk, and the failed write orders nothing anew
    assert _stored_serial(state_dir, cid) == first.serial_number
    assert p.orders_created() == orders + 1

    # writable again: the served certificate is stored by a later write
    remount(server.main_pid, state_dir, ro=False)
    wait_for(lambda: not server.status_cert(cid)["store_error"], 90,
             "store_error clears")
    assert _stored_serial(state_dir, cid) == new.serial_number
    assert "stored now" in server.error_log()[log_at:]
    with open(os.path.join(state_dir, "certs", cid, "state.json")) as f:
        st = json.load(f)
    assert st["failures"] == 0 and st["last_success"] > 0, st
    assert p.orders_created() == orders + 1
    c = server.status_cert(cid)
    assert same_serial(c["serial"], new.serial_number), c
    assert not server.problems(), server.problems()

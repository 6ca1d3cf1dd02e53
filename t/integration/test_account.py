"""nginx and Apache: one ACME account per issuer, whatever the number of
certificates, and an account.json that names another account heals by
itself (issue 7, item 0).  Before, concurrent first jobs each made an
account key, so account.key and account.json ended up belonging to
different accounts and every later order failed with "JWS verification
error"."""

import json
import os
import shutil

from servers import HTTPS_PORT
from tlsutil import Hammer, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 120


def _certs(server):
    return {c["id"]: c for c in server.status()["certificates"]}


def _all_valid(server, n):
    c = _certs(server)
    return len(c) == n and all(x["state"] == "valid" for x in c.values())


def _account(state_dir):
    with open(os.path.join(state_dir, "account.json")) as f:
        return json.load(f)


def replace_account_url(state_dir, url, old_format=False):
    """account.json with url for our key (old_format: without "key", as
    versions before issue 7 wrote it), written atomically with the owner
    and mode the module gave it (the worker user's, 0600)."""
    path = os.path.join(state_dir, "account.json")
    st = os.stat(path)
    tmp = path + ".test-tmp"
    acct = dict(_account(state_dir), url=url)
    if old_format:
        del acct["key"]
    with open(tmp, "w") as f:
        json.dump(acct, f)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def test_twenty_certificates_one_account(server, pebble, state_dir):
    """A fresh store, 20 certificates ordered at the same time (nginx: jobs
    of the lease holder; Apache: one job thread each): the jobs share one
    account key and one account; account.json names that key."""
    server.write_certs(pebble, state_dir, [(["k%d.example.test" % i], "") for i in range(1, 21)])
    server.start()
    wait_for(lambda: _all_valid(server, 20), ISSUE_TIMEOUT, "20 certificates valid")
    assert pebble.accounts_created() == 1, pebble.accounts_created()
    acct = _account(state_dir)
    assert acct["url"].startswith("https://127.0.0.1:") and len(acct["key"]) == 43, acct
    assert all(c["consecutive_failures"] == 0 for c in _certs(server).values())

    # a store as older versions left it: account.json of another account
    # (and without "key"); the next order uses the key's own account again
    server.stop()
    replace_account_url(state_dir, pebble.new_account(), old_format=True)
    shutil.rmtree(os.path.join(state_dir, "certs", "k1.example.test_ecdsa-256"))
    server.start()
    wait_for(lambda: _all_valid(server, 20), ISSUE_TIMEOUT, "k1 ordered again")
    assert _account(state_dir) == acct
    assert pebble.accounts_created() == 2       # ours and the foreign one
    assert not server.problems(), server.problems()


NAMES = {"k1.example.test_ecdsa-256": ["k1.example.test"],
         "k2.example.test_rsa-2048": ["k2.example.test"],
         "k3.example.test_ecdsa-256": ["k3.example.test", "k3b.example.test"]}
RENEWALS = 3        # per certificate, after the first issuance


def test_renewals_in_a_row_and_a_foreign_account_url(server, pebble_factory,
                                                     workdir, state_dir):
    """Three certificates (ECDSA, RSA, two names) with 20-second pebble
    certificates renew again and again while clients hammer every name:
    no failed handshake, no failed order.  After the first renewals the
    stored account URL is replaced by another account's: the next order
    is refused ("JWS verification error"), looks the key's account up
    again and goes on; account.json is fixed by itself."""
    p = pebble_factory(validity=20)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    server.write_certs(p, state_dir,
                       [(["k1.example.test"], ""), (["k2.example.test"], "key=rsa:2048"),
                        (["k3.example.test", "k3b.example.test"], "")],
                       # renewed 5 s after issuance (jitter up to 1 s earlier)
                       issuer={"renew_before_expiry": "75%"})
    server.start()
    wait_for(lambda: _all_valid(server, 3), ISSUE_TIMEOUT, "3 certificates valid")
    mine = _account(state_dir)
    for names in NAMES.values():
        for n in names:
            wait_acme_cert(HTTPS_PORT, n, root, 30, proc_alive=server.running)
    server.wait_installed()

    hammers = [Hammer(HTTPS_PORT, root, sni=n, max_seconds=240)
               for names in NAMES.values() for n in names]
    for h in hammers:
        h.start()
    try:
        wait_for(lambda: all(server.issued_count(c) >= 2 for c in NAMES), 90,
                 "a first renewal of each certificate")

        # account.json now names another account of the CA, for our key
        replace_account_url(state_dir, p.new_account())

        # every client sees each of them (served within a second or so)
        wait_for(lambda: all(server.issued_count(c) >= 1 + RENEWALS for c in NAMES)
                 and all(len(h.serials) >= 1 + RENEWALS for h in hammers), 120,
                 "%d renewals of each certificate, served" % RENEWALS)
    finally:
        for h in hammers:
            h.stop_event.set()
        for h in hammers:
            h.join(30)
    for h in hammers:
        print("hammer %s: %d handshakes, %d failed, %d serials" % (
            h.sni, h.ok + len(h.failures), len(h.failures), len(h.serials)))

    for h in hammers:
        assert h.failures == [], "%s: %d failed handshakes of %d, e.g. %s" % (
            h.sni, len(h.failures), h.ok + len(h.failures), h.failures[:3])
        assert len(h.serials) >= 1 + RENEWALS, (h.sni, h.serials)
    log = server.error_log()
    assert "order failed" not in log, [l for l in log.splitlines() if "order failed" in l]
    failed = [l for l in log.splitlines() if "attempt" in l and "failed" in l]
    assert not failed, failed
    assert "the CA refused the stored account" in log and "JWS verification" in log
    assert _account(state_dir) == mine          # healed: our key's own account
    assert p.accounts_created() == 2            # ours and the foreign one
    assert all(c["consecutive_failures"] == 0 for c in _certs(server).values())
    assert not server.problems(), server.problems()

"""nginx: one ACME account per issuer, whatever the number of certificates,
and an account.json that names another account heals by itself (issue 7,
item 0).  Before, concurrent first jobs each made an account key, so
account.key and account.json ended up belonging to different accounts and
every later order failed with "JWS verification error"."""

import json
import os
import shutil

from nginx_server import HTTP_PORT, HTTPS_PORT, get_status
from tlsutil import Hammer, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 120

CONF_HEAD = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
        @ISSUER_EXTRA@
    }

    server {
        listen 127.0.0.1:@HTTP@ default_server;
        server_name status.example.test;
        location = /acme-status { acme_status; }
    }
"""

SERVER = """
    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name %s;
        acme_certificate pebble %s;
    }
"""


def _start(srv, pebble, state_dir, certs, issuer_extra=""):
    """certs: [(names, acme_certificate args)], one server{} each."""
    body = CONF_HEAD + "".join(SERVER % (" ".join(n), a) for n, a in certs)
    srv.write_conf(body, URI=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   ISSUER_EXTRA=issuer_extra, HTTP=HTTP_PORT, HTTPS=HTTPS_PORT)
    return srv.start(ports=(HTTPS_PORT, HTTP_PORT))


def _certs():
    return {c["id"]: c for c in get_status(host="status.example.test")["certificates"]}


def _all_valid(n):
    c = _certs()
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


def test_twenty_certificates_one_account(nginx_factory, pebble, state_dir):
    """A fresh store, 20 certificates ordered at the same time: the jobs
    share one account key and one account; account.json names that key."""
    srv = nginx_factory()
    _start(srv, pebble, state_dir,
           [(["k%d.example.test" % i], "") for i in range(1, 21)])
    wait_for(lambda: _all_valid(20), ISSUE_TIMEOUT, "20 certificates valid")
    assert pebble.accounts_created() == 1, pebble.accounts_created()
    acct = _account(state_dir)
    assert acct["url"].startswith("https://127.0.0.1:") and len(acct["key"]) == 43, acct
    assert all(c["consecutive_failures"] == 0 for c in _certs().values())

    # a store as older versions left it: account.json of another account
    # (and without "key"); the next order uses the key's own account again
    srv.stop()
    replace_account_url(state_dir, pebble.new_account(), old_format=True)
    shutil.rmtree(os.path.join(state_dir, "certs", "k1.example.test_ecdsa-256"))
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))
    wait_for(lambda: _all_valid(20), ISSUE_TIMEOUT, "k1 ordered again")
    assert _account(state_dir) == acct
    assert pebble.accounts_created() == 2       # ours and the foreign one
    assert not srv.alerts(), srv.alerts()


NAMES = {"k1.example.test_ecdsa-256": ["k1.example.test"],
         "k2.example.test_rsa-2048": ["k2.example.test"],
         "k3.example.test_ecdsa-256": ["k3.example.test", "k3b.example.test"]}
RENEWALS = 3        # per certificate, after the first issuance


def _issued(srv, cid):
    return srv.error_log().count('acme: certificate "%s" issued' % cid)


def test_renewals_in_a_row_and_a_foreign_account_url(nginx_factory, pebble_factory,
                                                     workdir, state_dir):
    """Three certificates (ECDSA, RSA, two names) with 20-second pebble
    certificates renew again and again while clients hammer every name:
    no failed handshake, no failed order.  After the first renewals the
    stored account URL is replaced by another account's: the next order
    is refused ("JWS verification error"), looks the key's account up
    again and goes on; account.json is fixed by itself."""
    p = pebble_factory(validity=20)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    srv = nginx_factory()
    _start(srv, p, state_dir,
           [(["k1.example.test"], ""), (["k2.example.test"], "key=rsa:2048"),
            (["k3.example.test", "k3b.example.test"], "")],
           issuer_extra="renew_before_expiry 66%;")
    wait_for(lambda: _all_valid(3), ISSUE_TIMEOUT, "3 certificates valid")
    mine = _account(state_dir)
    for names in NAMES.values():
        for n in names:
            wait_acme_cert(HTTPS_PORT, n, root, 30, proc_alive=srv.running)

    hammers = [Hammer(HTTPS_PORT, root, sni=n, max_seconds=240)
               for names in NAMES.values() for n in names]
    for h in hammers:
        h.start()
    try:
        wait_for(lambda: all(_issued(srv, c) >= 2 for c in NAMES), 90,
                 "a first renewal of each certificate")

        # account.json now names another account of the CA, for our key
        replace_account_url(state_dir, p.new_account())

        # every client sees each of them (served within a second or so)
        wait_for(lambda: all(_issued(srv, c) >= 1 + RENEWALS for c in NAMES)
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
    log = srv.error_log()
    assert "order failed" not in log, [l for l in log.splitlines() if "order failed" in l]
    assert "the CA refused the stored account" in log and "JWS verification" in log
    assert _account(state_dir) == mine          # healed: our key's own account
    assert p.accounts_created() == 2            # ours and the foreign one
    assert all(c["consecutive_failures"] == 0 for c in _certs().values())
    assert not srv.alerts(), srv.alerts()

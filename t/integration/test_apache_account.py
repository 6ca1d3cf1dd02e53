"""Apache (mod_acme_auto): one ACME account per issuer, whatever the number
of certificates, and an account.json that names another account heals by
itself (issue 7, item 0); the same checks as test_nginx_account.py."""

import os
import re
import shutil

from apache_server import (HTTP_PORT, HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status)
from test_nginx_account import NAMES, RENEWALS, _account, replace_account_url
from tlsutil import Hammer, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 120

HEAD = """\
<AcmeIssuer pebble>
    AcmeDirectory @DIRURL@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
    AcmeStateDir @STATE@
@ISSUER_EXTRA@
</AcmeIssuer>

<VirtualHost 127.0.0.1:@HTTP_PORT@>
    ServerName status.example.test
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""

VHOST = """
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName %s
    %s
    SSLEngine on
    AcmeCertificate pebble %s
</VirtualHost>
"""


def _start(srv, pebble, state_dir, certs, issuer_extra=""):
    """certs: [(names, AcmeCertificate args)], one <VirtualHost> each."""
    body = HEAD + "".join(
        VHOST % (n[0], ("ServerAlias " + " ".join(n[1:])) if len(n) > 1 else "", a)
        for n, a in certs)
    srv.write_conf(body, DIRURL=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   ISSUER_EXTRA=issuer_extra)
    return srv.start()


def _certs():
    return {c["id"]: c for c in get_status(host="status.example.test")["certificates"]}


def _all_valid(n):
    c = _certs()
    return len(c) == n and all(x["state"] == "valid" for x in c.values())


def test_twenty_certificates_one_account(apache_factory, pebble, state_dir):
    """A fresh store, 20 certificates ordered at the same time (one job
    thread each): one account key, one account at the CA."""
    srv = apache_factory()
    _start(srv, pebble, state_dir, [(["k%d.example.test" % i], "") for i in range(1, 21)])
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
    srv.start()
    wait_for(lambda: _all_valid(20), ISSUE_TIMEOUT, "k1 ordered again")
    assert _account(state_dir) == acct
    assert pebble.accounts_created() == 2       # ours and the foreign one
    assert not srv.crashes(), srv.crashes()


def _installed_everywhere(srv):
    got = set(re.findall(r"(\S+): generation \d+ installed in pid (\d+)", srv.error_log()))
    return all((cid, str(pid)) in got for cid in NAMES for pid in srv.child_pids())


def _issued(srv, cid):
    return srv.error_log().count("mod_acme_auto: %s: new certificate" % cid)


def test_renewals_in_a_row_and_a_foreign_account_url(apache_factory, pebble_factory,
                                                     workdir, state_dir):
    """As for nginx: three certificates with 20-second pebble certificates
    renew again and again under hammering clients without a failed
    handshake or order; an account.json naming another account (written
    after the first renewals) is refused by the CA once and heals."""
    p = pebble_factory(validity=20)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    srv = apache_factory()
    _start(srv, p, state_dir,
           [(["k1.example.test"], ""), (["k2.example.test"], "key=rsa:2048"),
            (["k3.example.test", "k3b.example.test"], "")],
           issuer_extra="    AcmeRenewBeforeExpiry 66%")
    wait_for(lambda: _all_valid(3), ISSUE_TIMEOUT, "3 certificates valid")
    mine = _account(state_dir)
    for names in NAMES.values():
        for n in names:
            wait_acme_cert(HTTPS_PORT, n, root, 30, proc_alive=srv.running)
    # children poll the shared generations once a second: until a child has
    # installed a first certificate it serves the placeholder
    wait_for(lambda: _installed_everywhere(srv), 20,
             "the certificates installed in every child")

    hammers = [Hammer(HTTPS_PORT, root, sni=n, max_seconds=240)
               for names in NAMES.values() for n in names]
    for h in hammers:
        h.start()
    try:
        wait_for(lambda: all(_issued(srv, c) >= 2 for c in NAMES), 90,
                 "a first renewal of each certificate")
        replace_account_url(state_dir, p.new_account())
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
    log = srv.error_log()
    failed = [l for l in log.splitlines() if "attempt" in l and "failed" in l]
    assert not failed, failed
    assert "the CA refused the stored account" in log and "JWS verification" in log
    assert _account(state_dir) == mine
    assert p.accounts_created() == 2            # ours and the foreign one
    assert all(c["consecutive_failures"] == 0 for c in _certs().values())
    assert not srv.crashes(), srv.crashes()

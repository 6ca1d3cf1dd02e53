"""Both servers (issue 10 item 1): an issuer whose directory URL changes
(staging -> production) gets a new certificate from the new CA at once on
reload / graceful, not at the renewal window; the old certificate is served
until then, the old CA's account is kept beside the new one, the status
says why ("reason": "issuer changed") and the error log says it at notice.
A change of contact alone orders nothing.

The two CAs are two directory URLs: pebble's own and ca_proxy.py's in front
of the same pebble (one pebble on this machine's fixed ports; to the
module they are two CAs with their own accounts)."""

import os

from ca_proxy import CaProxy
from servers import HTTPS_PORT
from tlsutil import served_cert, wait_acme_cert, wait_for


def _accounts(state_dir):
    """The account.json files of the store (the root's and accounts/*)."""
    found = []
    for base, _dirs, files in os.walk(state_dir):
        if "account.json" in files and os.sep + "certs" not in base:
            found.append(os.path.join(base, "account.json"))
    return sorted(found)


def test_switch_ca_reorders_at_once(server, pebble, workdir, state_dir):
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(pebble).start()
    try:
        # CA A: pebble's directory (5-year certificates: no renewal window)
        server.start_managed(pebble, state_dir)
        first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                               proc_alive=server.running)
        server.wait_installed()
        wait_for(lambda: server.status_cert()["serial"], 20, "status serial")
        assert server.status_cert()["reason"] is None
        accounts_a = _accounts(state_dir)
        assert len(accounts_a) == 1, accounts_a
        with open(accounts_a[0]) as f:
            account_a = f.read()
        assert pebble.directory_url in account_a

        # contact only: no order
        orders = proxy.count("/order-plz")
        log_before = len(server.error_log())
        server.write_managed(pebble, state_dir,
                             issuer={"contact": "mailto:ops@example.test"})
        server.reload()
        wait_for(lambda: server.status_cert() is not None
                 and server.status_cert()["state"] == "valid", 20, "valid again")
        assert "starting an order" not in server.error_log()[log_before:]
        assert "ordering a new certificate" not in server.error_log()[log_before:]
        assert served_cert(HTTPS_PORT, "a.example.test").serial_number == first.serial_number

        # CA B: the proxy's directory URL; re-ordered at once
        log_before = len(server.error_log())
        server.write_managed(proxy, state_dir)
        server.reload()

        def new_served():
            c = served_cert(HTTPS_PORT, "a.example.test")
            return c if c.serial_number != first.serial_number else None
        wait_for(new_served, 60, "a certificate from the new CA")
        assert proxy.count("/order-plz") > orders
        assert proxy.count("/certZ/") >= 1

        log = server.error_log()[log_before:]
        assert "issuer changed" in log, log[-3000:]
        line = [ln for ln in log.splitlines() if "issuer changed" in ln][0]
        assert "notice" in line, line

        # both accounts in the store, A's unchanged
        accounts = _accounts(state_dir)
        assert len(accounts) == 2, accounts
        with open(accounts_a[0]) as f:
            assert f.read() == account_a
        assert any(proxy.directory_url in open(a).read() for a in accounts)

        # the status names the new CA, and once it is served, no reason
        wait_for(lambda: server.status_cert()["reason"] is None
                 and server.status_cert()["directory"] == proxy.directory_url,
                 30, "status after the switch")
        assert not server.problems(), server.problems()
    finally:
        proxy.stop()

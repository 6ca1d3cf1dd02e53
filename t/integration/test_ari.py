"""ACME Renewal Information (RFC 9773) on both servers.  Pebble 2.4 has no
renewalInfo: ca_proxy.py adds it to the directory and answers the
renewalInfo GETs with the windows a test sets (AriScript), with Retry-After
1 s, which ari_poll_interval 1s (Apache: AcmeARIPollInterval) lets the
server honour.  After issuance the server asks about the served
certificate's ID; the status (JSON, Prometheus, HTML) shows the window, the
chosen time and the explanationURL; a window moved into the past renews at
the next poll with newOrder's "replaces" naming the old certificate, and an
alreadyReplaced refusal gets the order once more without it; renewalInfo
failing (HTTP 500, garbage) leaves renewal to the lifetime rule (the unit
tests test_ari.c cover the time choice, the clamp and the certificate ID
with RFC 9773's example)."""

import base64
import datetime
import os

import pytest
from cryptography import x509

from ca_proxy import AriScript, CaProxy, cert_id
from servers import HTTPS_PORT
from test_status_views import get
from tlsutil import served_cert, wait_acme_cert, wait_for

CID = cert_id("a.example.test")
POLL = {"ari_poll_interval": "1s"}
WHY = "https://ca.test/ari/why"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def ari_id(cert):
    """RFC 9773 section 4.1: base64url(AKI keyIdentifier) "." base64url(the
    serial's DER content octets)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    n = cert.serial_number
    serial = n.to_bytes(n.bit_length() // 8 + 1, "big")  # a leading 0 for the top bit
    return b64url(aki.key_identifier) + "." + b64url(serial)


def ari_status(server, want):
    """The status' "ari" object once want(ari) holds."""
    return wait_for(lambda: (lambda a: a if a and want(a) else None)(
        server.status_cert(CID).get("ari")), 30, "the status' ari")


@pytest.mark.parametrize("case", ["moved", "refused"])
def test_ari_window_renews_with_replaces(server, pebble, workdir, state_dir, case):
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(pebble)
    proxy.ari = AriScript(explanation=WHY)
    proxy.start()
    try:
        server.start_managed(proxy, state_dir, issuer=POLL)
        first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                               proc_alive=server.running)
        old = ari_id(first)
        # (1) right after issuance: a renewalInfo GET for its ID
        wait_for(lambda: old in proxy.ari_ids, 30, "a renewalInfo GET for %s" % old)
        # (a newOrder may be sent twice: the engine sends it again after an
        # answer of unknown effect, e.g. a connection to the proxy lost)
        assert set(proxy.order_replaces) == {None}, proxy.order_replaces
        a = ari_status(server, lambda a: a["window_start"] and a["renew_at"])
        assert a["window_start"] <= a["renew_at"] < a["window_end"], a
        assert a["explanation_url"] == WHY and a["error"] is None, a
        assert a["supported"] is True, a
        # the next renewal is the time chosen in the window (the same draw
        # at every poll of the same window)
        wait_for(lambda: server.status_cert(CID)["next_renewal"] == a["renew_at"],
                 30, "next_renewal at the ARI time %s" % a["renew_at"])
        # Prometheus and HTML show it too
        _, _, prom = get(server.http_port, "/acme-status?format=prometheus")
        assert 'acme_ari_window_start_seconds{' in prom, prom[-2000:]
        assert 'explanation_url="%s"' % WHY in prom, prom[-2000:]
        _, _, html = get(server.http_port, "/acme-status", "text/html")
        assert "ARI window" in html and WHY in html, html[-2000:]

        # (2) the CA moves this certificate's window into the past: renewed
        # at the next poll, newOrder replaces it
        if case == "refused":
            proxy.refuse_replaces = 1
        now = datetime.datetime.now(datetime.timezone.utc)
        proxy.ari.windows[old] = (now - datetime.timedelta(days=2),
                                  now - datetime.timedelta(days=1))
        new = wait_for(lambda: (lambda c: c if c.serial_number != first.serial_number
                                else None)(served_cert(HTTPS_PORT, "a.example.test")),
                       60, "the renewed certificate")
        reps = list(proxy.order_replaces)
        assert old in reps, reps
        renewal = reps[reps.index(old):]
        assert set(reps[:reps.index(old)]) == {None}, reps
        if case == "moved":
            assert set(renewal) == {old}, reps
        else:
            # refused once: the same order once more without it
            assert renewal[1] is None and set(renewal) == {old, None}, reps
        log = server.error_log()
        refused = 'the CA refused "replaces"'
        assert (refused in log) == (case == "refused"), log[-3000:]
        # and the new one is asked about in turn
        wait_for(lambda: ari_id(new) in proxy.ari_ids, 30, "a renewalInfo GET for the new one")
    finally:
        proxy.stop()


@pytest.mark.parametrize("mode", ["500", "garbage"])
def test_ari_errors_fall_back_to_lifetime(server, pebble_factory, workdir, state_dir, mode):
    p = pebble_factory(validity=60)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(p)
    proxy.ari = AriScript(mode=mode)
    proxy.start()
    try:
        # the lifetime rule: renewal with 90 % of 60 s left
        server.start_managed(proxy, state_dir,
                             issuer=dict(POLL, renew_before_expiry="90%"))
        first = wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                               proc_alive=server.running)
        a = ari_status(server, lambda a: a["error"])
        assert "renewal-info" in a["error"], a
        assert a["window_start"] is None and a["renew_at"] is None, a
        _, _, prom = get(server.http_port, "/acme-status?format=prometheus")
        assert "acme_ari_fetch_error{" in prom, prom[-2000:]
        wait_for(lambda: (lambda c: c if c.serial_number != first.serial_number
                          else None)(served_cert(HTTPS_PORT, "a.example.test")),
                 60, "renewed by the lifetime rule")
        log = server.error_log()
        assert "renewal information (ARI) %s" % (
            "not fetched" if mode == "500" else "unusable") in log, log[-3000:]
    finally:
        proxy.stop()

"""nginx and Apache: the three views of the status location (issue 12
section 2; common/core/acme_status_view.h): Prometheus text (?format=
and Accept) that promtool accepts, the HTML page in headless Chromium,
JSON by default, 400 for an unknown format=, Vary: Accept; the order
counters (orders valid / invalid, renewals) through a failed attempt, the
first certificate and a renewal; Apache: mod_status' lines."""

import http.client
import os
import re
import shutil
import subprocess

import pytest

from apache_server import MODDIR
from serverlib import status_cert
from tlsutil import parse_rfc3339, wait_acme_cert, wait_for

from servers import HTTPS_PORT

CERT_ID = "a.example.test_ecdsa-256"
PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHROMIUM = shutil.which("chromium")
PROMTOOL = shutil.which("promtool")

# Apache: mod_status on the plain HTTP vhost's server (server level)
MOD_STATUS = """
LoadModule status_module %s/mod_status.so
<Location /server-status>
    SetHandler server-status
</Location>
""" % MODDIR


def get(port, path, accept=None):
    """GET on loopback: (status, headers (lower-case names), body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Accept": accept} if accept else {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, \
            r.read().decode("utf-8")
    finally:
        c.close()


def promtool_ok(text, workdir):
    path = os.path.join(workdir, "metrics.txt")
    with open(path, "w") as f:
        f.write(text)
    with open(path) as f:
        r = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return r.returncode == 0, r.stdout.decode(errors="replace")


def samples(text, name):
    """{frozenset(labels.items()): value} of metric `name`."""
    out = {}
    for m in re.finditer(r"(?m)^%s\{(.*)\} (\S+)$" % re.escape(name), text):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        out[frozenset(labels.items())] = float(m.group(2))
    return out


def one(text, name, **extra):
    """The value of the one sample of name for CERT_ID (with extra labels)."""
    found = [v for k, v in samples(text, name).items()
             if dict(k).get("id") == CERT_ID
             and all(dict(k).get(a) == b for a, b in extra.items())]
    assert len(found) == 1, (name, extra, text)
    return found[0]


def chromium(args, workdir, url):
    """Headless Chromium (own HOME, bounded); its stdout."""
    home = os.path.join(workdir, "chromium-home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home)
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--user-data-dir=" + os.path.join(home, "profile")]
                       + args + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return r.stdout.decode("utf-8", errors="replace")


@pytest.mark.skipif(not CHROMIUM or not PROMTOOL, reason="chromium / promtool missing")
def test_views(server, pebble, root_file, state_dir, workdir):
    more = [MOD_STATUS] if server.kind == "apache" else []
    server.start_managed(pebble, state_dir, more=more)
    port = server.http_port
    wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60, proc_alive=server.running)
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        status_cert(server.status(), CERT_ID)), 30, "the status shows it valid")
    assert c["orders"] == {"valid": 1, "invalid": 0} and c["renewals"] == 0, c

    # JSON by default (no Accept, */*, application/json); never cached
    for accept in (None, "*/*", "application/json"):
        st, h, body = get(port, "/acme-status", accept)
        assert st == 200 and h["content-type"] == "application/json", (accept, h)
        assert h["cache-control"] == "no-store" and "Accept" in h["vary"], h
        assert '"version": 2' in body

    # Prometheus: ?format=, the 0.0.4 Accept, OpenMetrics' Accept
    for path, accept in (("/acme-status?format=prometheus", None),
                         ("/acme-status", "text/plain; version=0.0.4"),
                         ("/acme-status", "application/openmetrics-text; version=1.0.0,"
                                          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")):
        st, h, text = get(port, path, accept)
        assert st == 200 and h["content-type"] == PROM_TYPE, (path, accept, h)
        assert "Accept" in h["vary"] and h["cache-control"] == "no-store", h
        ok, out = promtool_ok(text, workdir)
        assert ok, out + "\n" + text
    labels = dict(next(iter(k for k in samples(text, "acme_certificate_managed"))))
    assert labels == {"id": CERT_ID, "names": "a.example.test,b.example.test",
                      "issuer": "pebble", "key_type": "ecdsa:256"}, labels
    not_after = int(parse_rfc3339(c["not_after"]).timestamp())
    assert one(text, "acme_certificate_not_after_seconds") == not_after
    assert one(text, "acme_certificate_next_renewal_seconds") > 0
    assert one(text, "acme_certificate_consecutive_failures") == 0
    assert one(text, "acme_certificate_state", state="valid") == 1
    assert one(text, "acme_certificate_state", state="failed") == 0
    assert one(text, "acme_certificate_managed") == 1
    assert one(text, "acme_certificate_expiring") == 0
    assert one(text, "acme_orders_total", result="valid") == 1
    assert one(text, "acme_orders_total", result="invalid") == 0
    assert one(text, "acme_renewals_total") == 0
    assert "# TYPE acme_orders_total counter" in text

    # an unknown format: 400; format= wins over Accept
    assert get(port, "/acme-status?format=xml")[0] == 400
    st, h, _ = get(port, "/acme-status?format=json", "text/html")
    assert st == 200 and h["content-type"] == "application/json", h

    # HTML: a real browser (its own Accept: text/html) loads the page
    st, h, page = get(port, "/acme-status?format=html")
    assert st == 200 and h["content-type"] == "text/html; charset=utf-8", h
    url = "http://127.0.0.1:%d/acme-status" % port
    png = os.path.join(workdir, "status.png")
    dom = chromium(["--dump-dom", "--screenshot=" + png, "--window-size=1280,800"],
                   workdir, url)
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and title.group(1) == "ACME certificates (%s)" % server.kind, dom[:500]
    tbody = re.search(r"<tbody>(.*?)</tbody>", dom, re.S)
    assert tbody and len(re.findall(r"<tr\b", tbody.group(1))) == 1, dom
    assert "a.example.test" in tbody.group(1) and ">valid<" in tbody.group(1)
    assert re.search(r"<b>1</b>\s*valid", dom), dom
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    if server.kind == "apache":
        # mod_status, as mod_md: counts in ?auto, a table in the page
        st, _, auto = get(port, "/server-status?auto")
        assert st == 200, auto
        for line in ("ACMECertificates: 1", "ACMEValid: 1", "ACMEExpiring: 0",
                     "ACMEFailing: 0", "ACMEUnmanaged: 0"):
            assert line + "\n" in auto, auto
        st, _, html = get(port, "/server-status")
        assert st == 200 and "<h2>ACME certificates</h2>" in html, html[-2000:]
        assert "a.example.test_ecdsa-256" in html
    assert not server.problems()


def test_order_counters(server, pebble_factory, workdir, state_dir):
    """A failed attempt (the CA down), then the first certificate, then a
    renewal that replaces it: orders invalid / valid and renewals in JSON
    and Prometheus."""
    p = pebble_factory(start=False, validity=60)
    p.start_dns()
    # the first retry 2 s after the failure; renewal when 95 % of the
    # 60 s lifetime remains: 3 s after issuance
    server.start_managed(p, state_dir, issuer={"retry_delay": "2s",
                                               "renew_before_expiry": "95%"})
    c = wait_for(lambda: (lambda c: c if c["orders"]["invalid"] >= 1 else None)(
        status_cert(server.status(), CERT_ID)), 60, "a failed order counted")
    assert c["orders"]["valid"] == 0 and c["renewals"] == 0, c
    p.start_pebble()

    c = wait_for(lambda: (lambda c: c if c["renewals"] >= 1 else None)(
        status_cert(server.status(), CERT_ID)), 90, "a renewal counted")
    # every valid order after the first replaced a served certificate
    assert c["orders"]["invalid"] >= 1, c
    assert c["renewals"] == c["orders"]["valid"] - 1, c

    st, _, text = get(server.http_port, "/acme-status?format=prometheus")
    assert st == 200
    assert one(text, "acme_renewals_total") >= 1
    assert one(text, "acme_orders_total", result="valid") >= 2
    assert one(text, "acme_orders_total", result="invalid") >= 1
    ok, out = promtool_ok(text, workdir)
    assert ok, out
    assert not server.problems()

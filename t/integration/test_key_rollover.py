"""nginx and Apache: key_rollover pinned / AcmeKeyRollover pinned (issue
13, next-key pre-publication): each issuance also makes the key of the
next certificate, stored as certs/<id>/next.key (0600); the status
publishes its pin as "next_spki_pin" (and Prometheus as
acme_certificate_pin_info{pin="next"}) beside the served key's "spki_pin";
the renewal certifies that key and makes a new next one.  The next key
survives a restart, a reload turning the rollover off hides the next pin
(on again: published again); an unusable next.key at a renewal gives a fresh key
and a warning."""
import os
import re
import shutil
import stat

import pytest

from test_control import issued, new_served, request, start
from test_key_reuse import pin
from test_status_views import PROMTOOL, get, promtool_ok, samples
from tlsutil import wait_for


def conf(server, pebble, state_dir, issuer):
    """The configuration test_control.start writes (status control on)."""
    text = server.conf(pebble, state_dir, issuer=issuer)
    if server.kind == "nginx":
        return text.replace("acme_status;", "acme_status control;")
    return text.replace("SetHandler acme-status\n",
                        "SetHandler acme-status\n        AcmeStatusControl on\n")


def pins(server):
    c = server.status_cert()
    return c["spki_pin"], c["next_spki_pin"]


def renew(server, root_file, cid, old):
    status, body = request(server, "/acme-status?action=renew&id=" + cid)
    assert status == 202, body
    cert = new_served(server, root_file, old)
    server.wait_installed()
    return cert


def test_key_rollover(server, pebble, root_file, state_dir, workdir):
    start(server, pebble, state_dir, issuer={"key_rollover": "pinned"})
    first, cid = issued(server, root_file)

    # the served key's pin, and the next one, another key
    cur, nxt = pins(server)
    assert cur == pin(first)
    assert nxt and nxt != cur
    key = os.path.join(state_dir, "certs", cid, "next.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600

    # both pins in the metrics, as labels of an info series
    code, _, text = get(server.http_port, "/acme-status?format=prometheus")
    assert code == 200
    got = samples(text, "acme_certificate_pin_info")
    assert {(dict(k)["pin"], dict(k)["spki"]) for k in got} == {("current", cur),
                                                                 ("next", nxt)}
    assert set(got.values()) == {1.0}
    if PROMTOOL:
        ok, out = promtool_ok(text, workdir)
        assert ok, out

    # the renewal: the key pinned ahead is served, a new next one appears
    second = renew(server, root_file, cid, first)
    assert pin(second) == nxt
    cur2, nxt2 = pins(server)
    assert cur2 == nxt
    assert nxt2 and nxt2 not in (cur, nxt)

    # a restart keeps the next key and publishes it again
    server.stop()
    server.start()
    wait_for(lambda: pins(server) == (cur2, nxt2), 20, "the pins after a restart")

    # a reload turning it off hides the next pin, one turning it on again
    # publishes the stored next key's
    for opt, want in (("off", (cur2, None)), ("pinned", (cur2, nxt2))):
        server.raw.write_conf(conf(server, pebble, state_dir, {"key_rollover": opt}))
        server.reload()
        wait_for(lambda: pins(server) == want, 20, "the pins after a reload (%s)" % opt)

    # an unusable next.key at a renewal: a fresh key, a warning, a new next
    with open(key, "w") as f:
        f.write("garbage\n")
    third = renew(server, root_file, cid, second)
    assert pin(third) not in (cur, nxt, nxt2)
    cur3, nxt3 = pins(server)
    assert cur3 == pin(third) and nxt3 and nxt3 != cur3
    assert re.search(r"next key \(next\.key\) is unreadable", server.error_log())
    assert not server.problems(), server.problems()


def test_key_rollover_off_publishes_no_next_pin(server, pebble, root_file, state_dir):
    start(server, pebble, state_dir)
    first, cid = issued(server, root_file)
    assert pins(server) == (pin(first), None)
    assert not os.path.exists(os.path.join(state_dir, "certs", cid, "next.key"))

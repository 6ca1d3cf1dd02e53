"""ACME profiles, nginx-acme's "profile NAME [require]" (Apache: AcmeProfile
NAME [require]).  Pebble 2.4 has no profiles: ca_proxy.py adds
meta.profiles to its directory and records the "profile" field of each
newOrder (pebble ignores it).  Offered: newOrder carries it.  Not offered:
issued without a profile, one warning in the log; required: a
per-certificate error naming the profile and the CA, nothing ordered (the
engine's unit test engine_profile covers the rest)."""

import os

import pytest

from ca_proxy import CaProxy, cert_id
from servers import HTTPS_PORT
from tlsutil import wait_acme_cert, wait_for

PROFILES = {"classic": "https://ca.test/docs#classic",
            "shortlived": "https://ca.test/docs#shortlived"}
CID = cert_id("a.example.test")


@pytest.mark.parametrize("case", ["offered", "not-offered", "required"])
def test_profile(server, pebble, workdir, state_dir, case):
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(pebble)
    proxy.profiles = PROFILES
    value = {"offered": "shortlived", "not-offered": "tlsserver",
             "required": "tlsserver require"}[case]
    proxy.start()
    try:
        server.start_managed(proxy, state_dir, issuer={"profile": value})
        warning = ('the profile "tlsserver" is not offered by the CA at %s '
                   '(it offers "classic", "shortlived"): ordering without a '
                   'profile' % proxy.directory_url)
        if case != "required":
            wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                           proc_alive=server.running)
            want = "shortlived" if case == "offered" else None
            assert proxy.order_profiles and set(proxy.order_profiles) == {want}, \
                proxy.order_profiles
            log = server.error_log()
            assert log.count(warning) == (1 if case == "not-offered" else 0), log[-3000:]
            if case == "offered":
                assert not server.problems(), server.problems()
            return

        c = wait_for(lambda: (lambda c: c if c["consecutive_failures"] >= 1 else None)(
            server.status_cert(CID)), 60, "a failed order of %s" % CID)
        err = c["last_error"]
        assert ('new-order: the profile "tlsserver" is required and the CA at %s '
                'does not offer it (it offers "classic", "shortlived")'
                % proxy.directory_url) in err, err
        assert c["serial"] is None, c
        assert proxy.count("/order-plz") == 0, proxy.requests
        assert pebble.orders_created() == 0
    finally:
        proxy.stop()

"""nginx and Apache: short-lived certificates keep being renewed on time
under load (issue 13: Let's Encrypt's 6-day certificates, scaled down to
30 s; t/integration/shortlived.py): four certificates renewed by the
default rule for short-lived ones (at half the lifetime) twice each while
client threads make full handshakes round-robin over their names: no
failed handshake, no expired certificate ever served, every renewal served
before 3/4 of its predecessor's lifetime, no failed order.
bench/shortlived.sh runs the same with more certificates, for longer."""

import os

import shortlived

VALIDITY = 30           # pebble certificateValidityPeriod, seconds
NAMES = ["s%d.example.test" % i for i in range(4)]


def test_short_lived_renewed_on_time_under_load(server, pebble_factory, workdir,
                                                state_dir):
    p = pebble_factory(validity=VALIDITY)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    r = shortlived.run(server, p, root, state_dir, NAMES, renewals=2, clients=2,
                       timeout=3 * VALIDITY)
    print("%d handshakes in %.0f s, switches %s, worst switch at %.2f of the "
          "lifetime" % (r["handshakes"], r["elapsed"], r["switches"], r["worst"]))
    assert r["failures"] == [], r["failures"][:5]
    assert r["expired"] == [], r["expired"][:5]
    assert r["not_on_time"] == [], r["late"]
    assert all(c["consecutive_failures"] == 0 for c in r["status"]["certificates"])
    assert not server.problems(), server.problems()

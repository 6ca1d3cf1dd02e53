"""Both servers (issue 13 section 4): one certificate, several CAs.
"acme_certificate pebble ... fallback=second fallback_after=1" (nginx) /
"AcmeCertificate pebble ... fallback=second fallback_after=1" (Apache):
with the first CA down, after one failed attempt the next one orders from
the "second" issuer (its own account, a second pebble instance); the served
chain verifies against that CA's root, the status names it, state.json
records it, the certificate stays in the first issuer's store under its
id.  With the first CA back, the next renewal (asked for at the status
location) orders from the first issuer again.  Configuration errors name
the directive and file:line."""

import json
import os

from pebble import SECOND_SHIFT
from servers import HTTPS_PORT
from test_control import request
from tlsutil import served_cert, wait_acme_cert, wait_for

NAME = "a.example.test"
QUICK_RETRY = {"retry_delay": "1s"}
CERT_ID = NAME + "_ecdsa-256"


def _conf(server, pebble, ca_b, state_dir, cert_args):
    text = server.conf(pebble, state_dir, names=[NAME], issuer=QUICK_RETRY,
                       cert_args=cert_args,
                       more=[server.issuer_block(ca_b, state_dir + "-second",
                                                 QUICK_RETRY, name="second")])
    if server.kind == "nginx":
        return text.replace("acme_status;", "acme_status control;")
    return text.replace("SetHandler acme-status\n",
                        "SetHandler acme-status\n        AcmeStatusControl on\n")


def test_failover_to_second_ca_and_back(server, pebble, pebble_factory, workdir,
                                        state_dir):
    ca_b = pebble_factory(name="pebble-b", port_shift=SECOND_SHIFT, dns=False)
    root_b = ca_b.write_root(os.path.join(workdir, "root-b.pem"))
    pebble.stop_pebble()                # the first CA is down (its DNS runs)

    server.raw.write_conf(_conf(server, pebble, ca_b, state_dir,
                                "fallback=second fallback_after=1"))
    server.start()

    # the first attempt fails at the first CA, the second one uses B
    leaf = wait_acme_cert(HTTPS_PORT, NAME, root_b, 60, proc_alive=server.running)
    server.wait_installed()
    assert ca_b.issued_count() == 1
    wait_for(lambda: server.status_cert()["issuer"] == "second", 20, "status issuer")
    c = server.status_cert()
    assert c["issuers"] == ["pebble", "second"], c
    assert c["directory"] == ca_b.directory_url, c
    assert c["consecutive_failures"] == 0 and c["state"] == "valid", c
    assert c["id"] == CERT_ID, c
    log = server.error_log()
    assert "second" in log and "fallback" in log, log[-3000:]

    # stored in the first issuer's store, under its id; B's account in B's
    cert_dir = os.path.join(state_dir, "certs", CERT_ID)
    with open(os.path.join(cert_dir, "state.json")) as f:
        st = json.load(f)
    assert st["issuer"] == "second" and st["directory"] == ca_b.directory_url, st
    assert not os.path.exists(os.path.join(state_dir + "-second", "certs")), \
        os.listdir(state_dir + "-second")

    # the first CA back: the next renewal orders from it again
    pebble.start_pebble()
    root_a = pebble.write_root(os.path.join(workdir, "root-a.pem"))
    assert request(server, "/acme-status?action=renew&id=" + CERT_ID)[0] in (200, 202)
    wait_for(lambda: served_cert(HTTPS_PORT, NAME).serial_number != leaf.serial_number,
             60, "the renewed certificate served")
    wait_acme_cert(HTTPS_PORT, NAME, root_a, 60, proc_alive=server.running)
    server.wait_installed()
    wait_for(lambda: server.status_cert()["issuer"] == "pebble", 20, "status issuer")
    c = server.status_cert()
    assert c["directory"] == pebble.directory_url, c
    assert ca_b.issued_count() == 1 and pebble.issued_count() == 1
    assert c["id"] == CERT_ID


def test_failover_config_errors(server, pebble, pebble_factory, workdir, state_dir):
    ca_b = pebble_factory(start=False, name="pebble-b", port_shift=SECOND_SHIFT,
                          dns=False)
    directive = "acme_certificate" if server.kind == "nginx" else "AcmeCertificate"
    for args, words in (("fallback=nope", "nope"),
                        ("fallback=pebble", "own issuer"),
                        ("fallback=second,second", "listed twice"),
                        ("fallback_after=2", "needs fallback="),
                        ("fallback=second fallback_after=0", "1 to 100")):
        server.raw.write_conf(_conf(server, pebble, ca_b, state_dir, args))
        rc, out = server.test_config()
        assert rc != 0, (args, out)
        assert words in out and directive in out, (args, out)
        line = server.conf_lines(args)[0]
        # nginx and the Apache post-config check: file:line; an Apache
        # directive's own error: "Syntax error on line N of file"
        assert ":%d" % line in out or "line %d of" % line in out, (args, line, out)

"""nginx and Apache: renew now, revoke now at the status location (nginx
"acme_status control;", Apache "AcmeStatusControl on"), and a reload after
the store's certificate directory was deleted orders a new certificate."""

import http.client
import json
import os
import re
import shutil
import time
import urllib.request

import pytest

from httpgate import HttpGate
from pebble import HTTP_PORT
from servers import HTTPS_PORT
from test_events import _event_line, _program, _runs
from tlsutil import same_serial, served_cert, wait_acme_cert, wait_for


def start(server, pebble, state_dir, control=True, issuer=None):
    text = server.conf(pebble, state_dir, issuer=issuer)
    if control and server.kind == "nginx":
        text = text.replace("acme_status;", "acme_status control;")
    elif control:
        text = text.replace("SetHandler acme-status\n",
                            "SetHandler acme-status\n        AcmeStatusControl on\n")
    server.raw.write_conf(text)
    return server.start()


def request(server, path, method="POST", origin=None):
    """(status, body) of a request to the plain HTTP server's status."""
    headers = {"Host": "a.example.test"}
    if origin:
        headers["Origin"] = origin
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=5)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None,
                     headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def issued(server, root_file):
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60,
                          proc_alive=server.running)
    server.wait_installed()
    return cert, server.status_cert()["id"]


def new_served(server, root_file, old):
    """Waits until every worker / child serves a certificate other than old."""
    wait_for(lambda: served_cert(HTTPS_PORT, "a.example.test", root_file).serial_number
             != old.serial_number, 60, "a new certificate served")
    server.wait_installed()
    cert = served_cert(HTTPS_PORT, "a.example.test", root_file)
    assert cert.serial_number != old.serial_number
    return cert


def pebble_status(pebble, serial):
    url = "%s/cert-status-by-serial/%x" % (pebble.mgmt_url, serial)
    with urllib.request.urlopen(url, context=pebble.ssl_context(), timeout=5) as r:
        return json.loads(r.read())["Status"]


def test_renew_now(server, pebble, root_file, state_dir):
    start(server, pebble, state_dir)
    first, cid = issued(server, root_file)
    main_pid, orders = server.main_pid, pebble.orders_created()

    # nothing changes: GET, refusals (unknown id, another site, no action)
    status, body = request(server, "/acme-status?action=renew&id=" + cid, "GET")
    assert status == 200 and json.loads(body)["certificates"][0]["id"] == cid
    assert request(server, "/acme-status?action=renew&id=nope")[0] == 404
    assert request(server, "/acme-status?action=renew&id=" + cid,
                   origin="https://evil.example")[0] == 403
    assert request(server, "/acme-status?id=" + cid)[0] == 400
    assert request(server, "/acme-status?action=renew&id=" + cid, "PUT")[0] == 405
    if server.kind == "apache":
        # <Location /acme-status> is a prefix: the action as the last segment
        status, body = request(server, "/acme-status/renew?id=nope")
        assert status == 404 and b"no managed certificate" in body
    time.sleep(2.5)             # two ticks of the driver: nothing ordered
    assert pebble.orders_created() == orders

    # a new order at once (the window is weeks away), served without reload
    status, body = request(server, "/acme-status?action=renew&id=" + cid,
                           origin="http://a.example.test")
    assert status == 202, body
    assert [c["id"] for c in json.loads(body)["certificates"]] == [cid]
    new_served(server, root_file, first)
    assert pebble.orders_created() == orders + 1
    assert server.main_pid == main_pid and server.generations() == 1
    assert not server.problems(), server.problems()


# Apache only: a graceful restart makes a new generation of children (and
# shared memory) while the old child's order runs; nginx's reload is
# test_renew_now's shape with its own carry (acme_control_put_back)
@pytest.mark.parametrize("server", ["apache"], indirect=True)
def test_renew_cut_short_by_graceful_is_answered(server, pebble_factory, workdir,
                                                  state_dir):
    """A renew request whose order a graceful restart cuts short is
    answered by the new generation: a new certificate, "order aborted"
    logged."""
    p = pebble_factory(authz_reuse=0)
    root = p.write_root(os.path.join(workdir, "root.pem"))
    # the CA's validations pass a gate in front of the http-01 vhost
    gate = HttpGate(HTTP_PORT, HTTP_PORT + 1000).start()
    try:
        gate.open()
        server.use_ports(http_port=HTTP_PORT + 1000)
        start(server, p, state_dir)
        first, cid = issued(server, root)
        gate.close()
        seen = len(gate.requests)
        status, body = request(server, "/acme-status/renew?id=" + cid)
        assert status == 202, body
        # the renewal's validation is held: its order is in flight
        gate.wait(lambda r: len(r) > seen, 60, "the renewal's validation request")
        server.raw.graceful()
        gate.open()
        new_served(server, root, first)
        assert "order aborted" in server.error_log(), server.error_log()[-3000:]
    finally:
        gate.stop()


def test_control_needs_the_flag(server, pebble, root_file, state_dir):
    start(server, pebble, state_dir, control=False)
    _, cid = issued(server, root_file)
    assert request(server, "/acme-status?action=renew&id=" + cid)[0] == 403
    assert request(server, "/acme-status?action=renew&id=" + cid, "DELETE")[0] == 405


def test_control_configuration(server, pebble, state_dir):
    """The flag's syntax: a wrong value is refused at its line."""
    text = server.conf(pebble, state_dir)
    if server.kind == "nginx":
        text = text.replace("acme_status;", "acme_status contrl;", 1)
        want = 'invalid parameter "contrl" of "acme_status"'
    else:
        text = text.replace("SetHandler acme-status\n",
                            "SetHandler acme-status\n        AcmeStatusControl maybe\n", 1)
        want = "AcmeStatusControl must be On or Off"
    server.raw.write_conf(text)
    rc, out = server.test_config()
    assert rc != 0 and want in out, out
    line = server.conf_lines("contrl" if server.kind == "nginx" else "maybe")[0]
    assert ":%d" % line in out or "line %d" % line in out, out


def test_revoke_now(server, pebble, root_file, state_dir, workdir):
    prog, rec = _program(workdir)
    start(server, pebble, state_dir, issuer=_event_line(server, prog))
    first, cid = issued(server, root_file)

    assert request(server, "/acme-status?action=revoke&id=%s&reason=bogus" % cid)[0] == 400
    assert request(server, "/acme-status?action=revoke&id=all")[0] == 400
    status, body = request(server, "/acme-status?action=revoke&id=%s"
                           "&reason=keyCompromise" % cid)
    assert status == 202, body

    wait_for(lambda: pebble_status(pebble, first.serial_number) == "Revoked", 30,
             "pebble reports the certificate revoked")
    new = new_served(server, root_file, first)
    assert (new.public_key().public_numbers() != first.public_key().public_numbers())
    assert pebble_status(pebble, new.serial_number) == "Valid"
    wait_for(lambda: server.status_cert()["state"] == "valid", 20, "state valid again")
    m = re.search(r"serial (\S+) revoked at the CA \(reason keyCompromise\)",
                  server.error_log())
    assert m and same_serial(m.group(1), first.serial_number), m
    # the event program hears of it, with the revoked certificate's serial
    revoked = wait_for(lambda: [r for r in _runs(rec) if r["event"] == "revoked"], 20,
                       "the revoked event")
    assert revoked[0]["id"] == cid and same_serial(revoked[0]["serial"], first.serial_number)
    assert not server.problems(), server.problems()


def test_reload_after_store_entry_deleted(server, pebble, root_file, state_dir):
    start(server, pebble, state_dir, control=False)
    first, cid = issued(server, root_file)

    shutil.rmtree(os.path.join(state_dir, "certs", cid))
    server.reload()
    # the current certificate is served until the new one is installed:
    # every handshake verifies (never the placeholder)
    deadline = time.monotonic() + 60
    while served_cert(HTTPS_PORT, "a.example.test", root_file).serial_number \
            == first.serial_number:
        assert time.monotonic() < deadline, "no new certificate after the reload"
    new_served(server, root_file, first)
    wait_for(lambda: os.path.exists(os.path.join(state_dir, "certs", cid, "bundle.pem")),
             20, "the new certificate stored")
    assert not server.problems(), server.problems()

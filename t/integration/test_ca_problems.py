"""nginx and Apache, issue 10 item 5: what the CA says about a refused name
or order reaches the operator.  Real pebble behind ca_proxy.py, which
answers new-order / finalize for one name with a problem document (RFC 8555
section 6.7, subproblems 6.7.1); the http-01 validation of a name meets a
wrong answer (a 404).  The error log (error level) and the status'
last_error name the identifier and the CA's detail; rateLimited's
Retry-After is the status' next attempt, across a restart; a failed
challenge names its type and the URL the CA fetched."""

import http.server
import re
import socketserver
import threading

from ca_proxy import CaProxy, Problem, cert_id
from pebble import HTTP_PORT
from tlsutil import parse_rfc3339, wait_for

ISSUE_TIMEOUT = 60
STATUS_PORT = HTTP_PORT + 1000      # the plain HTTP server when 404s answer

REJECTED = "Cannot issue for \"r2.example.test\": the CA's policy forbids it"
REJECTED_SUB = "r2.example.test is on the CA's block list"
CAA = "CAA record for c.example.test prevents issuance"
CAA_SUB = "issuer not listed in the CAA record set"
RATE = "too many certificates already issued for example.test"
RATE_AFTER = 3600


def _failed(server, cid):
    return wait_for(lambda: (lambda c: c if c["consecutive_failures"] >= 1 else None)(
        server.status_cert(cid)), ISSUE_TIMEOUT, "a failed order of %s" % cid)


def _log_line(server, cid):
    """The error-level line of the failed order of cid."""
    lines = [l for l in server.error_log().splitlines()
             if cid in l and "order failed" in l]
    assert lines, server.error_log()
    # nginx "[error]", Apache "[acme_auto:error]"
    assert re.search(r"[\[:]error\]", lines[-1]), lines[-1]
    return lines[-1]


def test_refused_names(server, pebble_factory, state_dir):
    """new-order for r1+r2 answered 400 rejectedIdentifier with a subproblem
    for r2; finalize of c answered 403 caa: each failure names the refused
    identifier, the problem type and the CA's details."""
    p = pebble_factory(nonce_reject=0)
    proxy = CaProxy(p)
    proxy.problems[("/order-plz", "r2.example.test")] = Problem(
        400, "rejectedIdentifier", "Error creating new order :: " + REJECTED,
        subproblems=[("rejectedIdentifier", "r2.example.test", REJECTED_SUB)])
    proxy.problems[("/finalize-order/", "c.example.test")] = Problem(
        403, "caa", "Error finalizing order :: " + CAA,
        subproblems=[("caa", "c.example.test", CAA_SUB)])
    proxy.start()
    try:
        server.write_certs(proxy, state_dir,
                           [(["r1.example.test", "r2.example.test"], ""),
                            (["c.example.test"], "")],
                           issuer={"retry_delay": "3600s"})
        server.start()
        for cid, ident, typ, texts in (
                (cert_id("r1.example.test"), "r2.example.test", "rejectedIdentifier",
                 (REJECTED, REJECTED_SUB)),
                (cert_id("c.example.test"), "c.example.test", "caa", (CAA, CAA_SUB))):
            c = _failed(server, cid)
            assert c["state"] == "failed", c
            err = c["last_error"]
            # the identifier leads, with the problem type and its own detail
            lead = "the CA refused %s: urn:ietf:params:acme:error:%s: %s" % (
                ident, typ, texts[1])
            assert lead in err, err
            assert texts[0] in err, err
            line = _log_line(server, cid)
            assert lead in line and texts[0] in line, line
        assert not server.problems(), server.problems()
    finally:
        proxy.stop()


def test_rate_limited_retry_after(server, pebble_factory, state_dir):
    """new-order answered 429 rateLimited with Retry-After: 3600: the next
    attempt is the Retry-After (not the 1 s backoff), the status and the
    log say the CA asks to wait until then; a restart keeps it."""
    p = pebble_factory(nonce_reject=0)
    proxy = CaProxy(p)
    proxy.problems[("/order-plz", "l.example.test")] = Problem(
        429, "rateLimited", RATE, retry_after=RATE_AFTER)
    proxy.start()
    try:
        server.start_managed(proxy, state_dir, names=["l.example.test"],
                             issuer={"retry_delay": "1s"})
        c = _failed(server, cid := cert_id("l.example.test"))
        sent = proxy.problem_times[0][2]
        due = parse_rfc3339(c["next_renewal"]).timestamp()
        # the CA's value, from the second the answer came (whole seconds)
        assert sent + RATE_AFTER - 2 <= due <= sent + RATE_AFTER + 2, (c, sent)
        assert c["consecutive_failures"] == 1, c
        err = c["last_error"]
        assert "urn:ietf:params:acme:error:rateLimited: " + RATE in err, err
        assert "the CA asks to wait until " + c["next_renewal"] in err, err
        assert "the CA asks to wait until " + c["next_renewal"] in _log_line(server, cid)

        # the backoff is the stored state's: a full restart orders nothing
        orders = proxy.count("/order-plz")
        server.stop()
        server.start()
        c2 = wait_for(lambda: (lambda c: c if c["next_renewal"] else None)(
            server.status_cert(cid)), 20, "the status after the restart")
        assert c2["next_renewal"] == c["next_renewal"], (c, c2)
        assert c2["last_error"] == err, c2
        assert proxy.count("/order-plz") == orders
    finally:
        proxy.stop()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _Http(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def test_challenge_failure_names_the_url(server, pebble_factory, state_dir):
    """The CA's http-01 validation gets a 404 (the server's plain HTTP is
    elsewhere): the failure names the challenge type, the URL the CA
    fetched, and the CA's problem."""
    p = pebble_factory(nonce_reject=0)
    srv = _Http(("127.0.0.1", HTTP_PORT), _NotFound)
    srv.paths = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True)
    t.start()
    try:
        server.use_ports(http_port=STATUS_PORT)
        server.start_managed(p, state_dir, names=["u.example.test"],
                             issuer={"retry_delay": "3600s"})
        c = _failed(server, cid := cert_id("u.example.test"))
        assert srv.paths, "pebble never validated"
        url = "http://u.example.test" + srv.paths[0]
        err = c["last_error"]
        want = ("authorization of u.example.test is invalid: http-01 challenge "
                "failed: the CA fetched %s: urn:ietf:params:acme:error:" % url)
        assert want in err, (want, err)
        assert want in _log_line(server, cid)
    finally:
        srv.shutdown()
        srv.server_close()

"""A small HTTPS proxy of our own in front of real pebble, for tests where
the CA must hand out a wrong certificate or answer with faults.

    proxy = CaProxy(pebble).start()   # https://127.0.0.1:14010, pebble's API cert
    proxy.directory_url              # give this to the module instead of pebble's
    proxy.modes["a.example.test"] = "other-key"
    proxy.count("/order-plz")        # new-order requests seen (badNonce retries too)
    proxy.user_agents                # the User-Agent header of each request
    proxy.bodies                     # (path, body) of each request
    proxy.connections                # TCP connections accepted (HTTP/1.1
                                     # keep-alive: several requests each)
    proxy.stop()

Every request goes to pebble unchanged (the Host header too, so pebble's
URLs in the directory, orders and Location headers name the proxy, and the
JWS "url" the client signs matches what pebble checks).  Only a certificate
download (a response of type application/pem-certificate-chain) whose leaf
has a subjectAltName listed in modes is rewritten:

    "other-key"   a leaf with the same names but a fresh key
    "lacks-name"  a leaf with the CSR's key but without the DNS name last in
                  sort order
    "extra-name"  a leaf with the CSR's key, its names and x.example.test
    "future"      a leaf with the CSR's key and names, valid from
                  FUTURE_AHEAD after now (a CA whose clock runs ahead)

signed by a throwaway CA (followed by its certificate).  The module's check
must reject the first two before any question of trust arises; the third is
acceptable (a CA may add names), and so is the fourth (served once its
notBefore has come).

Faults: proxy.faults maps a path prefix to a list of modes (or one mode),
each used once, in order, by the next requests whose path starts with it:

    proxy.faults["/finalize-order/"] = ["pass-then-503", "503-no-pass"]

    "pass-then-503"   forwarded to pebble (which does it), the client gets
                      503 serverInternal with Retry-After: 1 (and pebble's
                      Replay-Nonce)
    "503-no-pass"     503 serverInternal with Retry-After: 1, not forwarded
    "pass-then-close" forwarded, then the connection is closed unanswered
    "429-rate-limited" 429 rateLimited with Retry-After: RATE_LIMITED_AFTER,
                      not forwarded
    "hold"            held (the client waits, unanswered) until
                      proxy.release is set, at most HOLD_MAX seconds; then
                      forwarded if released, else 503 not forwarded (or
                      dropped when the proxy stops; an order caught in
                      flight: test_fleet_scenarios.py)

proxy.faulted lists (path, mode) of each fault applied; proxy.held the
requests being held now.

Problems for one name: proxy.problems[(path prefix, name)] is a Problem
answered, not forwarded, to every request of that path whose JWS payload
names it (new-order: an identifier; finalize: a name of the CSR):

    proxy.problems[("/order-plz", "r2.example.test")] = Problem(
        400, "rejectedIdentifier", "policy forbids it",
        subproblems=[("rejectedIdentifier", "r2.example.test", "forbidden")])

proxy.problem_times lists (path, name, unix time) of each one answered.

ACME profiles (draft-ietf-acme-profiles; pebble 2.4 has none): with
proxy.profiles a dict (name -> description), the directory's "meta" gets
"profiles": that dict.  proxy.order_profiles lists the "profile" field of
each new-order payload (None when absent); the request goes to pebble
unchanged (pebble 2.4 ignores the unknown field).
ACME Renewal Information (RFC 9773; pebble 2.4 has none): with proxy.ari
set (an AriScript), the directory gets "renewalInfo"
(https://127.0.0.1:PORT/renewal-info) and GET /renewal-info/<cert ID> is
answered here, never forwarded, as the script says (a window, or "500", or
"garbage", with its Retry-After); proxy.ari_ids lists the cert ID of each
such GET.  proxy.order_replaces lists the "replaces" field of each
new-order payload (None when absent); with proxy.refuse_replaces N the
next N new-orders carrying "replaces" get 409 alreadyReplaced, not
forwarded (pebble 2.4 ignores the field otherwise).
Binds 127.0.0.1 only; every socket has a timeout.
"""

import base64
import datetime
import http.client
import json
import http.server
import os
import socketserver
import ssl
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pebble import API_PORT, PORT_OFFSET

PROXY_PORT = 14010 + PORT_OFFSET
PEM_CHAIN = "application/pem-certificate-chain"
FAULT_BODY = (b'{"type":"urn:ietf:params:acme:error:serverInternal",'
              b'"detail":"ca_proxy fault","status":503}')
RATE_LIMITED_BODY = (b'{"type":"urn:ietf:params:acme:error:rateLimited",'
                     b'"detail":"ca_proxy fault","status":429}')
RATE_LIMITED_AFTER = 4      # seconds, the Retry-After of "429-rate-limited"
FAULTS = ("pass-then-503", "503-no-pass", "pass-then-close", "429-rate-limited", "hold")
HOLD_MAX = 60.0             # seconds a "hold" request waits for proxy.release
EXTRA_NAME = "x.example.test"
FUTURE_AHEAD = datetime.timedelta(hours=2)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length",
               "proxy-connection", "upgrade", "te", "trailer"}


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def mint_wrong_chain(chain_pem, mode):
    """A PEM chain (leaf + throwaway CA) replacing pebble's, as mode says."""
    leaf = x509.load_pem_x509_certificate(chain_pem)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = list(san)
    public = leaf.public_key()
    if mode == "other-key":
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
    elif mode == "extra-name":
        names.append(x509.DNSName(EXTRA_NAME))
    elif mode == "future":
        pass
    elif mode == "lacks-name":
        # the DNS name last in sort order goes (deterministic for tests)
        drop = max(san.get_values_for_type(x509.DNSName))
        names = [n for n in names if not (isinstance(n, x509.DNSName) and n.value == drop)]
    else:
        raise ValueError("unknown mode %r" % mode)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf_from = now + FUTURE_AHEAD if mode == "future" else now - datetime.timedelta(hours=1)
    ca = (x509.CertificateBuilder()
          .subject_name(_name("ca_proxy throwaway CA"))
          .issuer_name(_name("ca_proxy throwaway CA"))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    bad = (x509.CertificateBuilder()
           .subject_name(leaf.subject)
           .issuer_name(ca.subject)
           .public_key(public)
           .serial_number(x509.random_serial_number())
           .not_valid_before(leaf_from)
           .not_valid_after(now + datetime.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName(names), critical=False)
           .sign(ca_key, hashes.SHA256()))
    return (bad.public_bytes(serialization.Encoding.PEM)
            + ca.public_bytes(serialization.Encoding.PEM))


class Problem:
    """An RFC 7807 problem document (RFC 8555 section 6.7) to answer with:
    type the ACME error name ("rateLimited"), subproblems (type, DNS name,
    detail) triples (section 6.7.1), retry_after the Retry-After header
    (seconds) or None."""

    def __init__(self, status, type, detail, subproblems=(), retry_after=None):
        self.status = status
        self.retry_after = retry_after
        doc = {"type": "urn:ietf:params:acme:error:" + type, "detail": detail,
               "status": status}
        if subproblems:
            doc["subproblems"] = [
                {"type": "urn:ietf:params:acme:error:" + t, "detail": d,
                 "identifier": {"type": "dns", "value": n}}
                for t, n, d in subproblems]
        self.body = json.dumps(doc).encode()


def _b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def request_payload(body):
    """The JWS payload of a request body as a dict, or None."""
    try:
        payload = json.loads(_b64url(json.loads(body)["payload"]) or b"null")
    except (ValueError, KeyError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


def request_names(body):
    """The DNS names a JWS request body is about: new-order's identifiers,
    finalize's CSR names; [] for anything else."""
    try:
        payload = json.loads(_b64url(json.loads(body)["payload"]) or b"null")
    except (ValueError, KeyError, TypeError):
        return []
    if not isinstance(payload, dict):
        return []
    if "identifiers" in payload:
        return [i.get("value") for i in payload["identifiers"]]
    if "csr" in payload:
        csr = x509.load_der_x509_csr(_b64url(payload["csr"]))
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return san.value.get_values_for_type(x509.DNSName)
    return []


class AriScript:
    """What GET /renewal-info/<id> answers: mode "window" (start, end:
    datetimes; explanation: the explanationURL or None), "500" (a
    serverInternal problem) or "garbage" (200, not JSON); retry_after the
    Retry-After header (seconds, None: absent); windows maps a cert ID to
    its own (start, end) (a CA moving one certificate's window)."""

    def __init__(self, start=None, end=None, mode="window", retry_after=1,
                 explanation=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.start = start or now + datetime.timedelta(days=30)
        self.end = end or self.start + datetime.timedelta(days=1)
        self.mode = mode
        self.retry_after = retry_after
        self.explanation = explanation
        self.windows = {}

    def answer(self, cert_id):
        """(status, content type, body bytes)."""
        if self.mode == "500":
            return 500, "application/problem+json", FAULT_BODY
        if self.mode == "garbage":
            return 200, "application/json", b"<html>not json</html>"
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        start, end = self.windows.get(cert_id, (self.start, self.end))
        doc = {"suggestedWindow": {"start": start.strftime(fmt),
                                   "end": end.strftime(fmt)}}
        if self.explanation:
            doc["explanationURL"] = self.explanation
        return 200, "application/json", json.dumps(doc).encode()


ALREADY_REPLACED_BODY = (b'{"type":"urn:ietf:params:acme:error:alreadyReplaced",'
                         b'"detail":"ca_proxy: the certificate was replaced '
                         b'already","status":409}')


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        with self.server.proxy.lock:
            self.server.proxy.connections += 1
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def _forward(self):
        proxy = self.server.proxy
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else None
        with proxy.lock:
            proxy.requests.append((self.command, self.path))
            proxy.bodies.append((self.path, body))
            proxy.times.append(time.monotonic())
            proxy.user_agents.append(self.headers.get("User-Agent"))
            replaces = None
            if self.path.startswith("/order-plz") and body:
                payload = request_payload(body)
                proxy.order_profiles.append(payload.get("profile") if payload else None)
                replaces = payload.get("replaces") if payload else None
                proxy.order_replaces.append(replaces)
            ari = proxy.ari
            if ari is not None and self.path.startswith("/renewal-info/"):
                proxy.ari_ids.append(self.path[len("/renewal-info/"):])
        if ari is not None and self.path.startswith("/renewal-info/"):
            status, ctype, data = ari.answer(self.path[len("/renewal-info/"):])
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if ari.retry_after is not None:
                self.send_header("Retry-After", str(ari.retry_after))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if replaces is not None:
            with proxy.lock:
                refuse = proxy.refuse_replaces > 0
                proxy.refuse_replaces -= refuse
            if refuse:
                self._answer_503(None, 409, ALREADY_REPLACED_BODY, None)
                return
        prob = proxy.take_problem(self.path, body)
        if prob is not None:
            self._answer_503(None, prob.status, prob.body, prob.retry_after)
            return
        fault = proxy.take_fault(self.path)
        if fault == "hold":
            with proxy.lock:
                proxy.held += 1
            deadline = time.monotonic() + HOLD_MAX
            released = False
            while not released and proxy._server is not None \
                    and time.monotonic() < deadline:
                released = proxy.release.wait(0.2)
            with proxy.lock:
                proxy.held -= 1
            if not released:
                if proxy._server is None:       # stopped: dropped unanswered
                    self.close_connection = True
                else:
                    self._answer_503(None)
                return
        if fault == "503-no-pass":
            self._answer_503(None)
            return
        if fault == "429-rate-limited":
            self._answer_503(None, 429, RATE_LIMITED_BODY, RATE_LIMITED_AFTER)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        conn = http.client.HTTPSConnection("127.0.0.1", API_PORT, timeout=30,
                                           context=proxy.upstream_ctx)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            rheaders = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS]
            status = resp.status
        finally:
            conn.close()

        if fault == "pass-then-503":
            self._answer_503(resp.getheader("Replay-Nonce"))
            return
        if fault == "pass-then-close":
            self.close_connection = True
            return

        ctype = resp.getheader("Content-Type") or ""
        if status == 200 and ctype.startswith(PEM_CHAIN):
            data = proxy.rewrite(data)
        if (status == 200 and self.command == "GET" and self.path == "/dir"
                and (proxy.profiles is not None or proxy.ari is not None)):
            doc = json.loads(data)
            if proxy.profiles is not None:
                doc.setdefault("meta", {})["profiles"] = proxy.profiles
            if proxy.ari is not None:
                doc["renewalInfo"] = "https://127.0.0.1:%d/renewal-info" % proxy.port
            data = json.dumps(doc).encode()

        self.send_response(status)
        for k, v in rheaders:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _answer_503(self, nonce, status=503, body=FAULT_BODY, retry_after=1):
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json")
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        if nonce:
            self.send_header("Replay-Nonce", nonce)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _forward


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class CaProxy:
    def __init__(self, pebble, port=PROXY_PORT):
        self.pebble = pebble
        self.port = port
        self.directory_url = "https://127.0.0.1:%d/dir" % port
        self.ca_pem = pebble.ca_pem          # the proxy shows pebble's API cert
        self.modes = {}                      # SAN (DNS name) -> mode
        self.rewritten = []                  # (name, mode) per rewritten download
        self.requests = []                   # (method, path)
        self.bodies = []                     # (path, request body or None)
        self.times = []                      # time.monotonic() of each request
        self.user_agents = []                # User-Agent of each request (None: none)
        self.connections = 0                 # connections accepted
        self.faults = {}                     # path prefix -> [mode, ...], each once
        self.faulted = []                    # (path, mode) per fault applied
        self.held = 0                        # "hold" requests waiting now
        self.release = threading.Event()     # set: held requests go on
        self.problems = {}                   # (path prefix, name) -> Problem
        self.problem_times = []              # (path, name, time.time())
        self.profiles = None                 # meta.profiles to add, or None
        self.order_profiles = []             # new-order "profile" (None: absent)
        self.ari = None                      # AriScript: renewalInfo answered here
        self.ari_ids = []                    # cert ID of each renewalInfo GET
        self.order_replaces = []             # new-order "replaces" (None: absent)
        self.refuse_replaces = 0             # next N with "replaces": alreadyReplaced
        self.lock = threading.Lock()
        self.upstream_ctx = ssl.create_default_context(cafile=pebble.ca_pem)
        self._server = None
        self._thread = None

    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.pebble.dir, "pebble-api.pem"),
                            os.path.join(self.pebble.dir, "pebble-api.key"))
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        # the handshake happens in the handler's thread, at its first read
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True,
                                              do_handshake_on_connect=False)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    def rewrite(self, chain_pem):
        leaf = x509.load_pem_x509_certificate(chain_pem)
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        with self.lock:
            for name in san.get_values_for_type(x509.DNSName):
                mode = self.modes.get(name)
                if mode:
                    self.rewritten.append((name, mode))
                    return mint_wrong_chain(chain_pem, mode)
        return chain_pem

    def take_fault(self, path):
        """The fault for this request, or None (each listed mode once)."""
        with self.lock:
            for prefix, modes in self.faults.items():
                if isinstance(modes, str):
                    modes = self.faults[prefix] = [modes]
                if path.startswith(prefix) and modes:
                    mode = modes.pop(0)
                    if mode not in FAULTS:
                        raise ValueError("unknown fault %r" % mode)
                    self.faulted.append((path, mode))
                    return mode
        return None

    def take_problem(self, path, body):
        """The Problem for this request, or None."""
        with self.lock:
            todo = [(k, v) for k, v in self.problems.items() if path.startswith(k[0])]
        if not todo or not body:
            return None
        names = request_names(body)
        for (prefix, name), prob in todo:
            if name in names:
                with self.lock:
                    self.problem_times.append((path, name, time.time()))
                return prob
        return None

    def count(self, path_prefix):
        """Requests whose path starts with path_prefix ("/order-plz", "/certZ/")."""
        with self.lock:
            return sum(1 for _, p in self.requests if p.startswith(path_prefix))


# -- the scenario both servers' tests share ---------------------------------
#
# Three certificates, issued honestly first; at renewal "a" gets a leaf for
# another key and "c" one lacking d.example.test (both rejected: failure,
# backoff, the first certificate kept), "e" one with an extra name (accepted;
# not ordered again and again for the name the CA added).

MODES = {"a.example.test": "other-key", "c.example.test": "lacks-name",
         "e.example.test": "extra-name"}
REJECTED = {"a.example.test": "its public key is not the key of the CSR",
            "c.example.test": 'it lacks the ordered identifier "d.example.test"'}
NAMES = ("a.example.test", "c.example.test", "e.example.test")


def cert_id(name):
    return name + "_ecdsa-256"


def _scheduled(c, now):
    from tlsutil import parse_rfc3339
    return c["next_renewal"] is not None and parse_rfc3339(c["next_renewal"]) > now


def wait_renewal_attempts(get_status, https_port, e_serial, timeout):
    """The status once "a" and "c" have a failed attempt each and "e" has a
    certificate other than e_serial, served, and a renewal time in the
    future."""
    from serverlib import status_cert
    from tlsutil import parse_rfc3339, same_serial, served_cert, wait_for

    def done():
        doc = get_status()
        now = parse_rfc3339(doc["generated_at"])
        e = status_cert(doc, cert_id("e.example.test"))
        ok = (all(status_cert(doc, cert_id(n))["consecutive_failures"] >= 1 for n in REJECTED)
              and e["serial"] is not None and not same_serial(e["serial"], e_serial)
              and _scheduled(e, now)
              and same_serial(e["serial"],
                              served_cert(https_port, "e.example.test").serial_number))
        return doc if ok else None
    return wait_for(done, timeout, "the renewal attempts of the three certificates")


def check_renewals(doc, proxy, first, https_port, root, state_dir, orders):
    """For "a" and "c": the error names the certificate URL, one failure with
    a backoff, the first certificate still in the status, served and stored.
    For "e": the certificate with the extra name, served, no failure, the next
    renewal in the future.  Pebble created `orders` orders (no storm)."""
    from serverlib import status_cert
    from tlsutil import load_pem_certs, parse_rfc3339, same_serial, served_cert

    url = "rejected the certificate at https://127.0.0.1:%d/certZ/" % proxy.port
    now = parse_rfc3339(doc["generated_at"])
    for name, why in REJECTED.items():
        c = status_cert(doc, cert_id(name))
        assert c["consecutive_failures"] == 1, c
        assert url in c["last_error"] and why in c["last_error"], c
        assert _scheduled(c, now), c
        assert same_serial(c["serial"], first[name].serial_number), c
        assert served_cert(https_port, name, cafile=root).serial_number \
            == first[name].serial_number
        with open(os.path.join(state_dir, "certs", cert_id(name), "bundle.pem"), "rb") as f:
            stored = load_pem_certs(f.read().decode())
        assert stored[0].serial_number == first[name].serial_number

    e = status_cert(doc, cert_id("e.example.test"))
    assert e["consecutive_failures"] == 0 and e["last_error"] is None, e
    assert _scheduled(e, now), e
    served = served_cert(https_port, "e.example.test")
    assert same_serial(e["serial"], served.serial_number), e
    assert EXTRA_NAME in served.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)

    assert proxy.pebble.orders_created() == orders, proxy.requests
    assert set(proxy.rewritten) == set(MODES.items()), proxy.rewritten

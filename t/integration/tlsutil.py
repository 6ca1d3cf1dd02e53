"""Client-side helpers shared by the nginx and Apache integration tests:
handshakes, certificate inspection, HTTP GETs, bounded polling."""

import datetime
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID


class Timeout(AssertionError):
    pass


def wait_for(pred, timeout, what, interval=0.2):
    """Polls pred() until it returns a true value (returned) or timeout
    seconds pass (AssertionError naming what, with the last exception)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:      # keep polling; report the last one
            last_exc = e
        if time.monotonic() > deadline:
            raise Timeout("timed out after %ss waiting for %s (last error: %r)"
                          % (timeout, what, last_exc))
        time.sleep(interval)


# -- TLS --------------------------------------------------------------------
def handshake(port, sni, cafile=None, host="127.0.0.1", timeout=5.0):
    """One full TLS handshake (no session reuse).  With cafile the chain and
    the name are verified (ssl.SSLError on failure).  Returns the leaf DER."""
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


def served_cert(port, sni, cafile=None, **kw):
    return x509.load_der_x509_certificate(handshake(port, sni, cafile, **kw))


def s_client_leaf(port, sni, *args):
    """The leaf an openssl s_client handshake with args (e.g. "-tls1_2",
    "-sigalgs", "RSA+SHA256") gets, None when the handshake gives none
    (sni None: no SNI)."""
    sni_args = ["-servername", sni] if sni else ["-noservername"]
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + sni_args + list(args)
    r = subprocess.run(cmd, input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=15)
    out = r.stdout.decode(errors="replace")
    begin = out.find("-----BEGIN CERTIFICATE-----")
    end = out.find("-----END CERTIFICATE-----")
    if begin < 0 or end < begin:
        return None
    pem = out[begin:end + len("-----END CERTIFICATE-----")] + "\n"
    return x509.load_pem_x509_certificate(pem.encode())


def served_chain_pem(port, sni, host="127.0.0.1", timeout=15):
    """The whole chain the server sends, as a list of PEM strings (s_client)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (host, port),
                        "-servername", sni, "-showcerts"],
                       input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = r.stdout.decode(errors="replace")
    certs, cur = [], None
    for line in out.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line.startswith("-----END CERTIFICATE-----"):
                certs.append("\n".join(cur) + "\n")
                cur = None
    return certs


def openssl_verify(leaf_pem, chain_pems, root_file, workdir, name=None):
    """openssl verify of leaf against root_file with the rest as untrusted.
    Returns (ok, output)."""
    import os
    leaf = os.path.join(workdir, "verify-leaf.pem")
    unt = os.path.join(workdir, "verify-untrusted.pem")
    with open(leaf, "w") as f:
        f.write(leaf_pem)
    with open(unt, "w") as f:
        f.write("".join(chain_pems) or leaf_pem)
    cmd = ["openssl", "verify", "-CAfile", root_file, "-untrusted", unt]
    if name:
        cmd += ["-verify_hostname", name]
    cmd.append(leaf)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15)
    return r.returncode == 0, r.stdout.decode(errors="replace")


def serial_hex(cert):
    return "%x" % cert.serial_number


def same_serial(a, b):
    """Serials compared as numbers (hex strings of any case/padding/colons)."""
    def num(s):
        if isinstance(s, int):
            return s
        return int(str(s).replace(":", ""), 16)
    return a is not None and b is not None and num(a) == num(b)


def sans(cert):
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return sorted(ext.value.get_values_for_type(x509.DNSName))


def is_self_signed(cert):
    return cert.issuer == cert.subject


def key_desc(cert):
    k = cert.public_key()
    if isinstance(k, ec.EllipticCurvePublicKey):
        return "ecdsa:%d" % k.curve.key_size
    if isinstance(k, rsa.RSAPublicKey):
        return "rsa:%d" % k.key_size
    return type(k).__name__


def not_after(cert):
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def describe(cert):
    return {
        "subject": cert.subject.rfc4514_string(),
        "sans": sans(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": serial_hex(cert),
        "not_before": cert.not_valid_before.isoformat() + "Z",
        "not_after": cert.not_valid_after.isoformat() + "Z",
        "key": key_desc(cert),
    }


def load_pem_certs(text):
    """All certificates in a PEM text (e.g. a store bundle), in order."""
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line.startswith("-----END CERTIFICATE-----"):
                out.append(x509.load_pem_x509_certificate(("\n".join(cur) + "\n").encode()))
                cur = None
    return out


# -- HTTP -------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def http_get(url, host=None, timeout=5.0, insecure=True):
    """GET without following redirects: (status, headers, body bytes)."""
    handlers = [_NoRedirect()]
    if url.startswith("https:"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url)
    if host:
        req.add_header("Host", host)
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def raw_http(port, request_bytes, host="127.0.0.1", timeout=5.0):
    """Sends raw bytes, returns the status code of the answer (or None)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def get_json(url, host=None, timeout=5.0):
    status, headers, body = http_get(url, host=host, timeout=timeout)
    if status != 200:
        raise AssertionError("GET %s -> %s: %r" % (url, status, body[:300]))
    return json.loads(body)


def parse_rfc3339(s):
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(s)


def wait_acme_cert(port, sni, root_file, timeout, proc_alive=None):
    """Waits until the server on port presents, for sni, a chain that verifies
    against root_file (i.e. the ACME certificate, not the fallback).
    proc_alive: optional callable; polling stops early when it returns False."""
    def check():
        if proc_alive is not None and not proc_alive():
            raise Timeout("server process died while waiting for the certificate")
        return served_cert(port, sni, cafile=root_file)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            return check()
        except Timeout:
            raise
        except Exception as e:
            last = e
        if time.monotonic() > deadline:
            raise Timeout("no verifying certificate for %s on port %d after %ss "
                          "(last: %r)" % (sni, port, timeout, last))
        time.sleep(0.25)


class Hammer(threading.Thread):
    """Full TLS handshakes (new connection each, no session reuse, chain and
    name verified against root_file) in a loop until stopped; bounded by
    max_seconds whatever happens."""

    def __init__(self, port, root_file, sni="a.example.test", max_seconds=200):
        super().__init__(daemon=True)
        self.port = port
        self.root_file = root_file
        self.sni = sni
        self.deadline = time.monotonic() + max_seconds
        self.stop_event = threading.Event()
        self.ok = 0
        self.failures = []
        self.serials = {}           # serial -> handshakes that saw it
        self.lock = threading.Lock()

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            try:
                der = handshake(self.port, self.sni, cafile=self.root_file)
                serial = x509.load_der_x509_certificate(der).serial_number
                with self.lock:
                    self.ok += 1
                    self.serials[serial] = self.serials.get(serial, 0) + 1
            except Exception as e:
                with self.lock:
                    self.failures.append(repr(e))

    def count(self, serial):
        with self.lock:
            return self.serials.get(serial, 0)


def hammer_through_renewal(port, root_file, first_serial, timeout, min_seen,
                           snis=("a.example.test", "b.example.test")):
    """Hammers port with full handshakes (one client per SNI) until a
    certificate other than first_serial is served and every client saw it
    min_seen times (bounded).  Returns (new certificate, hammers) for the
    caller's assertions."""

    def renewed():
        c = x509.load_der_x509_certificate(handshake(port, snis[0], cafile=root_file))
        return c if c.serial_number != first_serial else None

    hammers = [Hammer(port, root_file, sni=s) for s in snis]
    for h in hammers:
        h.start()
    try:
        new = wait_for(renewed, timeout, "a renewed certificate being served")
        wait_for(lambda: all(h.count(new.serial_number) >= min_seen or not h.is_alive()
                             for h in hammers), 60, "the clients seeing the new certificate")
    finally:
        for h in hammers:
            h.stop_event.set()
        for h in hammers:
            h.join(30)
    for h in hammers:
        print("hammer %s: %d handshakes, %d failed, serials seen %s" % (
            h.sni, h.ok + len(h.failures), len(h.failures),
            {"%x" % k: v for k, v in h.serials.items()}))
    return new, hammers

"""Issue 9: the handshake path is the server's own, as with a static
certificate file.

nginx: the handshake path is nginx's own, as with a static
ssl_certificate.  The worker installs the issued certificate into the
server's SSL_CTX once (SSL_CTX_use_cert_and_key) and no longer swaps
certificates on each connection (SSL_certs_clear + SSL_use_cert_and_key in
a certificate callback).  A tiny LD_PRELOAD shim in front of libssl counts
those calls in the nginx processes.  On a restart with the certificate in
the store, the master installs it before forking (the workers inherit the
context ready, and touch no certificate page of their own).

Apache: a child writes a newly issued certificate (and the pair of an
ECDSA + RSA vhost found in the store at startup) into its copy of mod_ssl's
context while no connection is in flight, instead of its cert callback
installing it on every handshake (SSL_certs_clear + SSL_use_cert_and_key)."""

import os
import subprocess

import pytest

from nginx_server import start_managed
from pebble import HTTP_PORT
from servers import HTTPS_PORT
from tlsutil import (is_self_signed, key_desc, s_client_leaf, served_cert, sans,
                     wait_acme_cert, wait_for)

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* one byte per call into $ACME_SHIM_LOG: c = per connection, x = context
 * (X in a process running as root: the master; the workers run as
 * www-data); read at load time: nginx workers keep only TZ of the
 * environment */
static const char *path;

__attribute__((constructor)) static void init(void)
{
    /* a copy: nginx's setproctitle overwrites the environment strings */
    const char *p = getenv("ACME_SHIM_LOG");
    path = p ? strdup(p) : NULL;
}

static void mark(const char *b)
{
    int fd = path ? open(path, O_WRONLY | O_APPEND) : -1;
    if (fd >= 0) {
        (void) !write(fd, b, 1);
        close(fd);
    }
}

#define WRAP(name, byte)                                                  \
int name(void *a, void *b, void *c, void *d, int o)                      \
{                                                                         \
    static int (*real)(void *, void *, void *, void *, int);             \
    if (real == NULL) real = dlsym(RTLD_NEXT, #name);                     \
    mark(geteuid() == 0 && byte[0] == 'x' ? "X" : byte);                  \
    return real(a, b, c, d, o);                                           \
}

WRAP(SSL_use_cert_and_key, "c")
WRAP(SSL_CTX_use_cert_and_key, "x")

void SSL_certs_clear(void *s)
{
    static void (*real)(void *);
    if (real == NULL) real = dlsym(RTLD_NEXT, "SSL_certs_clear");
    mark("c");
    real(s);
}
"""

HANDSHAKES = 20


def _shim(workdir):
    """(shim .so, counts file)"""
    src = os.path.join(workdir, "shim.c")
    so = os.path.join(workdir, "shim.so")
    with open(src, "w") as f:
        f.write(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", so, src, "-ldl"],
                   check=True, timeout=60)
    counts = os.path.join(workdir, "calls")
    open(counts, "w").close()
    os.chmod(counts, 0o666)                 # the workers / children run as www-data
    return so, counts


def _read(path):
    with open(path) as f:
        return f.read()


def test_certificate_lives_in_the_ssl_ctx(nginx_factory, pebble, root_file, state_dir,
                                          workdir):
    so, counts = _shim(workdir)

    srv = nginx_factory(workers=1)
    srv.extra_env = {"LD_PRELOAD": so, "ACME_SHIM_LOG": counts}
    start_managed(srv, pebble, state_dir, ports=(HTTPS_PORT, HTTP_PORT))
    leaf = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60,
                          proc_alive=srv.running)

    with open(counts) as f:
        before = f.read()
    # the worker put the certificate into the server's context
    assert "x" in before, before

    for i in range(HANDSHAKES):
        # with SNI, and without (the managed server is the port's default)
        c = served_cert(HTTPS_PORT, "a.example.test" if i % 2 else None)
        assert c.serial_number == leaf.serial_number and sans(c) == sans(leaf)

    with open(counts) as f:
        after = f.read()
    # nothing per connection: the old callback swapped 2 calls per handshake
    assert after.count("c") == 0, after
    assert after == before, (before, after)
    assert not srv.alerts(), srv.alerts()

    # a restart on the stored certificate: installed by the master, before
    # the worker exists; the worker installs nothing itself
    srv.stop()
    open(counts, "w").close()
    start_managed(srv, pebble, state_dir, ports=(HTTPS_PORT, HTTP_PORT))
    c = served_cert(HTTPS_PORT, "a.example.test", cafile=root_file)
    assert c.serial_number == leaf.serial_number
    with open(counts) as f:
        restart = f.read()
    assert "X" in restart and "x" not in restart and "c" not in restart, restart
    assert not srv.alerts(), srv.alerts()


# TLS 1.2 and 1.3, each key type, with and without SNI (the vhost is the
# port's default)
APACHE_CASES = [
    (["-tls1_2", "-sigalgs", "ECDSA+SHA256"], "ecdsa:256"),
    (["-tls1_2", "-sigalgs", "RSA+SHA256"], "rsa:2048"),
    (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"], "ecdsa:256"),
    (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"], "rsa:2048"),
]


def _apache_handshakes(serials=None):
    """Each case with and without SNI: the issued certificate of the right
    key type; returns {key: serial}."""
    got = {}
    for sni in ("a.example.test", None):
        for args, want in APACHE_CASES:
            leaf = s_client_leaf(HTTPS_PORT, sni, *args)
            assert leaf is not None and not is_self_signed(leaf), (sni, args, leaf)
            assert key_desc(leaf) == want, (sni, args, key_desc(leaf))
            got.setdefault(want, set()).add(leaf.serial_number)
    assert all(len(v) == 1 for v in got.values()), got
    got = {k: v.pop() for k, v in got.items()}
    if serials is not None:
        assert got == serials, (got, serials)
    return got


@pytest.mark.parametrize("server", ["apache"], indirect=True)
def test_apache_certificate_lives_in_the_ssl_ctx(server, pebble, state_dir, workdir):
    so, counts = _shim(workdir)
    server.configure(children=1)
    server.raw.extra_env = {"LD_PRELOAD": so, "ACME_SHIM_LOG": counts}
    # an ECDSA and an RSA certificate on one vhost, both issued while the
    # child runs (each replaces the P-256 placeholder)
    server.start_managed(pebble, state_dir,
                         cert_args="key=ecdsa:256\n    AcmeCertificate pebble key=rsa:2048")
    wait_for(lambda: (lambda c: len(c) == 2 and all(x["state"] == "valid" for x in c))(
        server.status()["certificates"]), 90, "both certificates valid")
    # the child's refresher writes both into mod_ssl's context (x), once no
    # connection is in flight
    wait_for(lambda: _read(counts).count("x") >= 2, 20, "both in the context")
    serials = _apache_handshakes()
    before = _read(counts)
    _apache_handshakes(serials)
    after = _read(counts)
    # nothing per connection (the callback used to clear + install 3 calls)
    assert after == before, (before, after)
    assert not server.problems(), server.problems()

    # a restart on the stored pair: mod_ssl loads both files; the child
    # puts its parsed copies into the context before it serves (no thread
    # of its own yet), and still nothing per connection
    server.stop()
    open(counts, "w").close()
    server.start()
    _apache_handshakes(serials)
    restart = _read(counts)
    assert "c" not in restart and restart.count("x") == 2, restart
    assert not server.problems(), server.problems()


@pytest.mark.parametrize("server", ["apache"], indirect=True)
def test_apache_rsa_certificate_replaces_its_placeholder(server, pebble, state_dir,
                                                         workdir):
    """A vhost with only an RSA certificate: its placeholder is RSA too, so
    the issued certificate replaces it in the child's context (a P-256
    placeholder would stay beside it, and every connection would get the
    certificate from the callback)."""
    so, counts = _shim(workdir)
    server.configure(children=1)
    server.raw.extra_env = {"LD_PRELOAD": so, "ACME_SHIM_LOG": counts}
    server.start_managed(pebble, state_dir, cert_args="key=rsa:2048")
    wait_for(lambda: (lambda c: len(c) == 1 and c[0]["state"] == "valid")(
        server.status()["certificates"]), 90, "certificate valid")
    wait_for(lambda: _read(counts).count("x") >= 1, 20, "in the context")
    before = _read(counts)
    serials = set()
    for sni in ("a.example.test", None):
        for proto in ("-tls1_2", "-tls1_3"):
            leaf = s_client_leaf(HTTPS_PORT, sni, proto)
            assert leaf is not None and not is_self_signed(leaf), (sni, proto, leaf)
            assert key_desc(leaf) == "rsa:2048", key_desc(leaf)
            serials.add(leaf.serial_number)
    assert len(serials) == 1, serials
    after = _read(counts)
    assert after == before, (before, after)     # nothing per connection
    assert not server.problems(), server.problems()


H2_BODY = """
LoadModule http2_module @MODDIR@/mod_http2.so
Protocols h2 http/1.1
@ISSUER@
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName a.example.test
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName d.example.test
    SSLEngine on
    SSLCertificateFile @DCERT@
    SSLCertificateKeyFile @DKEY@
</VirtualHost>
<VirtualHost 127.0.0.1:@HTTP_PORT@>
    ServerName a.example.test
    <Location /acme-status>
        SetHandler acme-status
        AcmeStatusControl on
    </Location>
</VirtualHost>
"""


class _H2:
    """An HTTP/2 connection (ALPN h2) that sends a GET / on a new stream at
    each get(): its requests are its secondary connections'."""

    def __init__(self, ctx, sni, session=None):
        import socket
        raw = socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5)
        self.s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
        assert self.s.selected_alpn_protocol() == "h2"
        self.sni, self.stream = sni, 1
        self.s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\x04\0\0\0\0\0")
        self.get()

    def get(self):
        import struct
        # HPACK: GET, https, /, :authority (literal, indexed name 1)
        hb = b"\x82\x87\x84\x41" + bytes([len(self.sni)]) + self.sni.encode()
        self.s.sendall(struct.pack(">I", len(hb))[1:] + b"\x01\x05"
                       + struct.pack(">I", self.stream) + hb)
        self.stream += 2
        got = b""
        while True:     # frames until one of type HEADERS (1) for our stream
            while len(got) < 9:
                d = self.s.recv(65536)
                assert d, "h2 connection closed"
                got += d
            n = int.from_bytes(got[:3], "big")
            while len(got) < 9 + n:
                d = self.s.recv(65536)
                assert d, "h2 connection closed"
                got += d
            ftype, sid = got[3], int.from_bytes(got[5:9], "big") & 0x7fffffff
            got = got[9 + n:]
            if ftype == 1 and sid == self.stream - 2:
                return

    def close(self):
        self.s.close()


def test_apache_h2_connections_leave_flight(apache_factory, pebble, root_file, state_dir,
                                            workdir):
    """HTTP/2 connections whose handshake skips the cert callback (a resumed
    session; a vhost without a managed certificate) and whose requests are
    their secondary connections': open, they must not keep the child from
    writing a renewed certificate into mod_ssl's context (ALPN's switch to
    h2 ends their flight)."""
    import ssl
    from apache_server import get_status, issuer_conf
    from test_control import request

    dkey, dcert = os.path.join(workdir, "d.key"), os.path.join(workdir, "d.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", dkey, "-out", dcert,
                    "-subj", "/CN=d.example.test", "-days", "2"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(dkey, 0o644)
    srv = apache_factory(children=1)
    srv.write_conf(H2_BODY.replace("@ISSUER@", issuer_conf(pebble, state_dir)),
                   DCERT=dcert, DKEY=dkey)
    srv.start()
    wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60, proc_alive=srv.running)
    in_ctx = "in the context of a.example.test"
    wait_for(lambda: srv.error_log().count(in_ctx) == 1, 20, "in the context")

    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.check_hostname, plain.verify_mode = False, ssl.CERT_NONE
    plain.set_alpn_protocols(["h2"])
    unmanaged = _H2(plain, "d.example.test")
    tls12 = ssl.create_default_context(cafile=root_file)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    tls12.set_alpn_protocols(["h2"])
    first = _H2(tls12, "a.example.test")
    session = first.s.session
    first.close()
    resumed = _H2(tls12, "a.example.test", session)
    assert resumed.s.session_reused

    cid = get_status()["certificates"][0]["id"]
    status, body = request(srv, "/acme-status?action=renew&id=" + cid)
    assert status == 202, body

    def written():
        unmanaged.get()     # both stay open and busy
        resumed.get()
        return srv.error_log().count(in_ctx) == 2
    wait_for(written, 30, "the renewed certificate in the context")
    unmanaged.close()
    resumed.close()
    assert "exit signal" not in srv.error_log()

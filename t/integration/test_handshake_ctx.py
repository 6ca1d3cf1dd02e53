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

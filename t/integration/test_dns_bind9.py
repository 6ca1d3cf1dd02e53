"""common/core/acme_dns.c and common/io/acme_dns_client.c against a real
authoritative server: Debian's BIND 9.

The C code is loaded through ctypes from a shared library compiled here from
those two and common/core/acme_util.c (nothing else is needed), so these
tests exercise exactly the functions the servers' modules call: RFC 2136
updates signed with TSIG, TXT/SOA queries, the bounded UDP/TCP sender.
named (see bind9.py) is authoritative for example.test on 127.0.0.1 and
accepts updates signed with the key "acme-key".
"""

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from bind9 import Bind9

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ZONE = "example.test"
ADD, DELETE = 1, 2
TIMEOUT_MS = 5000


class TsigKey(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("alg", ctypes.c_void_p),
                ("secret", ctypes.c_void_p), ("secret_len", ctypes.c_size_t)]


class Txn(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint16), ("opcode", ctypes.c_uint8),
                ("qtype", ctypes.c_uint16), ("qname", ctypes.c_char * 256),
                ("key", ctypes.c_void_p), ("mac", ctypes.c_ubyte * 64),
                ("mac_len", ctypes.c_size_t)]


class Answer(ctypes.Structure):
    _fields_ = [("rcode", ctypes.c_int), ("aa", ctypes.c_int),
                ("tc", ctypes.c_int), ("signed_ok", ctypes.c_int),
                ("tsig_error", ctypes.c_int),
                ("txt", ctypes.POINTER(ctypes.c_char_p)),
                ("n_txt", ctypes.c_size_t), ("soa_owner", ctypes.c_char_p),
                ("ns", ctypes.POINTER(ctypes.c_void_p)),
                ("n_ns", ctypes.c_size_t)]


class Lib:
    """Thin Python face of the C API; errors come back as (rc, message)."""

    def __init__(self, path):
        c = self.c = ctypes.CDLL(path)
        P, S, I, U32 = ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint32
        VP = ctypes.c_void_p
        c.acme_tsig_key_from_bind.argtypes = [ctypes.POINTER(TsigKey), P, P, S]
        c.acme_tsig_key_clear.argtypes = [ctypes.POINTER(TsigKey)]
        c.acme_dns01_txt_value.argtypes = [P]
        c.acme_dns01_txt_value.restype = VP
        c.acme_dns01_record_name.argtypes = [P]
        c.acme_dns01_record_name.restype = VP
        c.acme_dns_update_blocking.argtypes = [P, I, P, P, P, U32, I,
                                               ctypes.POINTER(TsigKey), I, P, S]
        c.acme_dns_txt_visible_blocking.argtypes = [P, I, P, P, I, P, S]
        c.acme_dns_find_zone_blocking.argtypes = [P, I, I, P, I,
                                                  ctypes.POINTER(VP), P, S]
        c.acme_dns_zone_ns_blocking.argtypes = [
            P, I, I, P, I, ctypes.POINTER(ctypes.POINTER(VP)),
            ctypes.POINTER(S), P, S]
        c.acme_dns_update_build.argtypes = [
            ctypes.POINTER(Txn), P, P, P, U32, I, ctypes.POINTER(TsigKey),
            ctypes.c_longlong, ctypes.c_uint16,
            ctypes.POINTER(VP), ctypes.POINTER(S), P, S]
        c.acme_dns_exchange.argtypes = [P, I, I, VP, S, I, ctypes.POINTER(VP),
                                        ctypes.POINTER(S), P, S]
        c.acme_dns_response_parse.argtypes = [
            ctypes.POINTER(Txn), VP, S, ctypes.c_longlong,
            ctypes.POINTER(Answer), P, S]
        c.acme_dns_update_check.argtypes = [ctypes.POINTER(Answer), P, S]
        c.acme_dns_answer_free.argtypes = [ctypes.POINTER(Answer)]
        self.libc = ctypes.CDLL(None)
        self.libc.free.argtypes = [VP]

    def _take(self, ptr):
        s = ctypes.string_at(ptr).decode()
        self.libc.free(ptr)
        return s

    def key(self, text):
        k = TsigKey()
        err = ctypes.create_string_buffer(512)
        rc = self.c.acme_tsig_key_from_bind(ctypes.byref(k), text.encode(),
                                            err, 512)
        assert rc == 0, err.value.decode()
        return k

    def txt_value(self, key_authz):
        return self._take(self.c.acme_dns01_txt_value(key_authz.encode()))

    def record_name(self, domain):
        return self._take(self.c.acme_dns01_record_name(domain.encode()))

    def update(self, port, name, value, op, key, zone=ZONE, ttl=60):
        err = ctypes.create_string_buffer(512)
        rc = self.c.acme_dns_update_blocking(
            b"127.0.0.1", port, zone.encode(), name.encode(), value.encode(),
            ttl, op, ctypes.byref(key), TIMEOUT_MS, err, 512)
        return rc, err.value.decode()

    def visible(self, port, name, value):
        err = ctypes.create_string_buffer(512)
        rc = self.c.acme_dns_txt_visible_blocking(
            b"127.0.0.1", port, name.encode(),
            value.encode() if value is not None else None, TIMEOUT_MS, err, 512)
        assert rc >= 0, err.value.decode()
        return rc == 1

    def find_zone(self, port, name):
        err = ctypes.create_string_buffer(512)
        z = ctypes.c_void_p()
        rc = self.c.acme_dns_find_zone_blocking(
            b"127.0.0.1", port, 0, name.encode(), TIMEOUT_MS, ctypes.byref(z),
            err, 512)
        return (self._take(z.value) if rc == 0 else None), err.value.decode()

    def zone_ns(self, port, zone):
        err = ctypes.create_string_buffer(512)
        arr = ctypes.POINTER(ctypes.c_void_p)()
        n = ctypes.c_size_t()
        rc = self.c.acme_dns_zone_ns_blocking(
            b"127.0.0.1", port, 0, zone.encode(), TIMEOUT_MS, ctypes.byref(arr),
            ctypes.byref(n), err, 512)
        if rc != 0:
            return None, err.value.decode()
        names = [self._take(arr[i]) for i in range(n.value)]
        self.libc.free(ctypes.cast(arr, ctypes.c_void_p))
        return names, ""


@pytest.fixture(scope="module")
def lib():
    d = tempfile.mkdtemp(prefix="acme-dns-lib-")
    so = os.path.join(d, "libacmedns.so")
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-shared", "-fPIC",
                    "-O1", "-Wall", "-Wextra", "-Werror",
                    "-Wno-unused-parameter",
                    "-I", os.path.join(REPO, "common", "core"),
                    "-I", os.path.join(REPO, "common", "io"),
                    os.path.join(REPO, "common", "core", "acme_dns.c"),
                    os.path.join(REPO, "common", "io", "acme_dns_client.c"),
                    os.path.join(REPO, "common", "core", "acme_util.c"),
                    "-o", so, "-lcrypto"], check=True, timeout=120)
    yield Lib(so)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def named():
    d = tempfile.mkdtemp(prefix="acme-named-t-")
    b = Bind9(d, zone=ZONE)
    try:
        b.start()
        yield b
    finally:
        b.stop()
        log = b.log()
        shutil.rmtree(d, ignore_errors=True)
        # shown by pytest only when a test of this module failed
        print("\n===== named log (tail) =====\n" + log[-3000:])


@pytest.fixture
def key(lib, named):
    k = lib.key(named.key_text)
    yield k
    lib.c.acme_tsig_key_clear(ctypes.byref(k))


def _wrong_secret_text(text):
    """The same key file with another 32-byte secret."""
    return re.sub(r'secret "[^"]*"',
                  'secret "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlBQkNERUY="', text)


def test_add_see_delete_gone(lib, named, key):
    name = lib.record_name("*.www." + ZONE)
    assert name == "_acme-challenge.www." + ZONE
    value = lib.txt_value("token-1.thumbprint-1")
    assert len(value) == 43

    zone, err = lib.find_zone(named.port, name)
    assert zone == ZONE, err
    servers, err = lib.zone_ns(named.port, zone)
    assert servers == ["ns." + ZONE], err

    assert not lib.visible(named.port, name, value)
    rc, err = lib.update(named.port, name, value, ADD, key)
    assert rc == 0, err
    assert lib.visible(named.port, name, value)
    dug = named.dig(name, "TXT")
    if dug is not None:             # dig is in bind9-dnsutils
        assert dug == [value]

    rc, err = lib.update(named.port, name, value, DELETE, key)
    assert rc == 0, err
    assert not lib.visible(named.port, name, value)
    assert not lib.visible(named.port, name, None)
    dug = named.dig(name, "TXT")
    if dug is not None:
        assert dug == []
    assert "updating zone 'example.test/IN'" in named.log()


def test_two_values_one_name(lib, named, key):
    """A wildcard and its base name share the record: deleting one value
    leaves the other."""
    name = lib.record_name(ZONE)
    v1, v2 = lib.txt_value("a.b"), lib.txt_value("c.d")
    for v in (v1, v2):
        rc, err = lib.update(named.port, name, v, ADD, key)
        assert rc == 0, err
    assert lib.visible(named.port, name, v1)
    assert lib.visible(named.port, name, v2)

    rc, err = lib.update(named.port, name, v1, DELETE, key)
    assert rc == 0, err
    assert not lib.visible(named.port, name, v1)
    assert lib.visible(named.port, name, v2)

    rc, err = lib.update(named.port, name, v2, DELETE, key)
    assert rc == 0, err
    assert not lib.visible(named.port, name, None)


def _signed_update_by_hand(lib, port, key, name, value, now, tcp):
    """Build (signed at now), exchange, parse (at now): (rc, Answer, err)."""
    c = lib.c
    txn = Txn()
    msg = ctypes.c_void_p()
    mlen = ctypes.c_size_t()
    err = ctypes.create_string_buffer(512)
    rc = c.acme_dns_update_build(ctypes.byref(txn), ZONE.encode(),
                                 name.encode(), value.encode(), 60, ADD,
                                 ctypes.byref(key), now, 4242,
                                 ctypes.byref(msg), ctypes.byref(mlen), err, 512)
    assert rc == 0, err.value.decode()

    resp = ctypes.c_void_p()
    rlen = ctypes.c_size_t()
    rc = c.acme_dns_exchange(b"127.0.0.1", port, tcp, msg, mlen, TIMEOUT_MS,
                             ctypes.byref(resp), ctypes.byref(rlen), err, 512)
    lib.libc.free(msg)
    assert rc == 0, err.value.decode()

    ans = Answer()
    rc = c.acme_dns_response_parse(ctypes.byref(txn), resp, rlen, now,
                                   ctypes.byref(ans), err, 512)
    lib.libc.free(resp)
    return rc, ans, err.value.decode()


def test_signed_update_over_tcp(lib, named, key):
    """The sans-I/O pieces by hand: build, send over TCP, verify the
    response's TSIG, check the verdict."""
    name = "_acme-challenge.tcp." + ZONE
    rc, ans, err = _signed_update_by_hand(lib, named.port, key, name,
                                          "over-tcp", int(time.time()), 1)
    assert rc == 0, err
    assert ans.rcode == 0 and ans.signed_ok == 1 and ans.tsig_error == 0
    err = ctypes.create_string_buffer(512)
    assert lib.c.acme_dns_update_check(ctypes.byref(ans), err, 512) == 0
    lib.c.acme_dns_answer_free(ctypes.byref(ans))

    assert lib.visible(named.port, name, "over-tcp")
    rc, e = lib.update(named.port, name, "over-tcp", DELETE, key)
    assert rc == 0, e


def test_clock_skew_is_badtime(lib, named, key):
    """Our clock 1000 s behind: the server answers BADTIME, signed over our
    request; the verdict says so."""
    name = "_acme-challenge.skew." + ZONE
    rc, ans, err = _signed_update_by_hand(lib, named.port, key, name, "late",
                                          int(time.time()) - 1000, 0)
    assert rc == 0, err
    assert ans.rcode == 9 and ans.tsig_error == 18, (ans.rcode, ans.tsig_error)
    # BADTIME answers are signed (with the server's time as other data)
    assert ans.signed_ok == 1
    err = ctypes.create_string_buffer(512)
    assert lib.c.acme_dns_update_check(ctypes.byref(ans), err, 512) == -1
    assert "NOTAUTH, TSIG BADTIME" in err.value.decode(), err.value
    lib.c.acme_dns_answer_free(ctypes.byref(ans))
    assert not lib.visible(named.port, name, None)


def test_wrong_secret_is_badsig(lib, named, key):
    bad = lib.key(_wrong_secret_text(named.key_text))
    name = "_acme-challenge.bad." + ZONE
    try:
        rc, err = lib.update(named.port, name, "nope", ADD, bad)
    finally:
        lib.c.acme_tsig_key_clear(ctypes.byref(bad))
    assert rc == -1
    assert "DNS UPDATE refused: NOTAUTH, TSIG BADSIG" in err, err
    assert "secret" in err
    assert not lib.visible(named.port, name, None)


def test_unknown_key_is_badkey(lib, named):
    other = lib.key(_wrong_secret_text(named.key_text).replace(
        '"acme-key"', '"someone-else"'))
    try:
        rc, err = lib.update(named.port, "_acme-challenge." + ZONE, "nope",
                             ADD, other)
    finally:
        lib.c.acme_tsig_key_clear(ctypes.byref(other))
    assert rc == -1
    assert "TSIG BADKEY" in err, err


def test_zone_not_served(lib, named, key):
    rc, err = lib.update(named.port, "_acme-challenge.other.test", "x", ADD,
                         key, zone="other.test")
    assert rc == -1
    assert "DNS UPDATE refused:" in err, err

    zone, err = lib.find_zone(named.port, "_acme-challenge.other.test")
    assert zone is None
    assert "no zone found" in err or "REFUSED" in err, err

    servers, err = lib.zone_ns(named.port, "other.test")
    assert servers is None
    assert "no NS records for other.test" in err, err

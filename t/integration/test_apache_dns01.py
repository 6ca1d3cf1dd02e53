"""Apache (mod_acme_auto): dns-01 and wildcard certificates against a real
BIND 9 (bind9.py) on loopback, authoritative for example.test, with pebble's
-dnsserver pointed at it.  The TXT records are made by RFC 2136 updates
(AcmeDNSUpdate) or by a hook program (AcmeDNSHook, a shell script calling
nsupdate), and removed afterwards; a failing hook is a clear per-certificate
error.  Config mistakes are caught by apache2 -t with file:line."""

import base64
import os
import re
import stat

import pytest

from apache_server import (HTTPS_PORT, apache_factory, get_status,  # noqa: F401 (fixture)
                           managed_conf, start_managed, status_cert)
from bind9 import Bind9
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

NAMES = ("example.test", "*.example.test")
RECORD = "_acme-challenge.example.test"
ISSUE_TIMEOUT = 90
FAIL_TIMEOUT = 60


@pytest.fixture
def bind(workdir):
    b = Bind9(workdir)
    b.prepare()
    # the test names resolve to loopback through it
    with open(os.path.join(b.dir, b.zone + ".db"), "a") as f:
        f.write("@   IN A   127.0.0.1\n*   IN A   127.0.0.1\n")
    b.start()
    yield b
    b.stop()


def _secret(bind):
    return re.search(r'secret "([^"]+)"', bind.key_text).group(1)


def _key_file(bind, workdir):
    path = os.path.join(workdir, "acme-key.conf")
    with open(path, "w") as f:
        f.write(bind.key_text)
    os.chmod(path, 0o600)           # read by the root parent at config time
    return path


def _dns_pebble(pebble_factory, bind, workdir):
    p = pebble_factory(dns_server="127.0.0.1:%d" % bind.port)
    return p, p.write_root(os.path.join(workdir, "root.pem"))


def _hook(workdir, bind, body):
    """An executable hook script and the directory it records into (both
    usable by the child user)."""
    rec = os.path.join(workdir, "hook-rec")
    os.makedirs(rec, exist_ok=True)
    os.chmod(rec, 0o777)
    path = os.path.join(workdir, "dns-hook.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body.format(rec=rec, port=bind.port,
                                             secret=_secret(bind)))
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP
             | stat.S_IROTH | stat.S_IXOTH)
    return path, rec


def _txt_gone(bind):
    return wait_for(lambda: bind.dig(RECORD) == [], 30, "TXT records removed")


def test_dns01_rfc2136_wildcard(apache_factory, pebble_factory, bind, workdir,
                                state_dir):
    pebble, root = _dns_pebble(pebble_factory, bind, workdir)
    extra = ("    AcmeChallenge dns-01\n"
             "    AcmeDNSUpdate 127.0.0.1:%d acme-key file:%s hmac-sha256\n"
             % (bind.port, _key_file(bind, workdir)))
    srv = start_managed(apache_factory(), pebble, state_dir, names=NAMES,
                        issuer_extra=extra)
    # a name that only the wildcard covers, without a restart
    cert = wait_acme_cert(HTTPS_PORT, "x.example.test", root, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert not is_self_signed(cert)
    assert sans(cert) == ["*.example.test", "example.test"]
    _txt_gone(bind)
    c = status_cert(get_status(host="example.test"))
    assert c["challenge"] == "dns-01"
    assert c["state"] == "valid" and not c["last_error"], c
    log = srv.error_log()
    assert "_acme-challenge.example.test TXT" in log and "removed" in log
    assert _secret(bind) not in log
    assert not srv.crashes(), srv.crashes()


HOOK_NSUPDATE = """\
echo "$#|$1|$2|$3" >> {rec}/calls
id -un > {rec}/user
env | cut -d= -f1 | sort > {rec}/env
case "$1" in add) op=add ;; remove) op=delete ;; *) exit 2 ;; esac
printf 'server 127.0.0.1 {port}\\nzone example.test\\nupdate %s _acme-challenge.%s 60 TXT "%s"\\nsend\\n' \\
    "$op" "$2" "$3" | nsupdate -y hmac-sha256:acme-key:{secret}
"""


def test_dns01_hook(apache_factory, pebble_factory, bind, workdir, state_dir):
    pebble, root = _dns_pebble(pebble_factory, bind, workdir)
    hook, rec = _hook(workdir, bind, HOOK_NSUPDATE)
    extra = ("    AcmeChallenge dns-01\n    AcmeDNSHook %s 30\n"
             "    AcmeDNSPropagationCheck 127.0.0.1:%d 30\n" % (hook, bind.port))
    srv = start_managed(apache_factory(), pebble, state_dir, names=NAMES,
                        issuer_extra=extra)
    cert = wait_acme_cert(HTTPS_PORT, "x.example.test", root, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert sans(cert) == ["*.example.test", "example.test"]
    _txt_gone(bind)
    calls = [line.split("|") for line in open(os.path.join(rec, "calls")).read().split()]
    adds = [c for c in calls if c[1] == "add"]
    removes = [c for c in calls if c[1] == "remove"]
    # one authorization per identifier (both are example.test), 3 arguments,
    # the domain without "*.", the TXT value base64url(SHA-256) = 43 chars
    assert len(adds) == 2 and len(calls) == 4, calls
    for c in calls:
        assert c[0] == "3" and c[2] == "example.test", c
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", c[3]), c
    assert sorted(a[3] for a in adds) == sorted(r[3] for r in removes)
    assert open(os.path.join(rec, "user")).read().strip() == srv.user
    env = set(open(os.path.join(rec, "env")).read().split())
    assert "PATH" in env and env <= {"PATH", "PWD", "SHLVL", "_", "OLDPWD"}, env
    assert not srv.crashes(), srv.crashes()


HOOK_FAIL = """\
echo "$1" >> {rec}/calls
echo "zone example.test is not ours" >&2
exit 3
"""

# "add" hangs (with a child of its own); "remove" answers at once
HOOK_HANG = """\
echo "$1" >> {rec}/calls
[ "$1" = remove ] && exit 0
echo "waiting for the DNS provider" >&2
sleep 300
"""

# a hook that says it is done but sets nothing
HOOK_NOOP = """\
echo "$1" >> {rec}/calls
"""

HOOK_LINES = ("    AcmeChallenge dns-01\n    AcmeDNSHook {hook} {timeout}\n"
              "    AcmeDNSPropagationCheck 127.0.0.1:{port} {check}\n")
WRONG_SECRET = base64.b64encode(bytes(range(32))).decode()

FAIL_CASES = [
    ("hook-exit3", HOOK_FAIL, dict(timeout=30, check=10),
     ["dns hook add example.test", "exited with status 3", "zone example.test is not ours"]),
    ("hook-timeout", HOOK_HANG, dict(timeout=1, check=10),
     ["dns hook add example.test", "killed after 1 s"]),
    ("not-visible", HOOK_NOOP, dict(timeout=30, check=3),
     ["dns propagation", "_acme-challenge.example.test TXT", "127.0.0.1:{port}",
      "after 3 s"]),
    ("update-badsig", None, None,
     ["dns-01 update", "key acme-key", "BADSIG"]),
]


@pytest.mark.parametrize("case_id,body,lines,words", FAIL_CASES,
                         ids=[c[0] for c in FAIL_CASES])
def test_dns01_failure(case_id, body, lines, words, apache_factory,
                       pebble_factory, bind, workdir, state_dir):
    """Each failing step is a clear per-certificate error (status and log);
    a hook is asked to remove the record after a failure too."""
    pebble, _ = _dns_pebble(pebble_factory, bind, workdir)
    if body is not None:
        hook, rec = _hook(workdir, bind, body)
        extra = HOOK_LINES.format(hook=hook, port=bind.port, **lines)
    else:
        extra = ("    AcmeChallenge dns-01\n    AcmeDNSUpdate 127.0.0.1:%d "
                 "acme-key %s\n" % (bind.port, WRONG_SECRET))
    srv = start_managed(apache_factory(), pebble, state_dir, names=NAMES,
                        issuer_extra=extra)

    def failed():
        c = status_cert(get_status(host="example.test"))
        return c if c["last_error"] and c["consecutive_failures"] >= 1 else None
    c = wait_for(failed, FAIL_TIMEOUT, "a failed attempt in the status")
    assert c["state"] == "failed" and c["challenge"] == "dns-01"
    log = srv.error_log()
    for w in words:
        w = w.format(port=bind.port)
        assert w in c["last_error"], (w, c)
        assert w in log, w
    assert WRONG_SECRET not in log
    if body is not None:
        wait_for(lambda: "remove" in open(os.path.join(rec, "calls")).read(),
                 10, "hook remove after the failure")


CONFIG_CASES = [
    ("dns01-no-publisher", "    AcmeChallenge dns-01", NAMES,
     ["dns-01", "neither AcmeDNSUpdate nor AcmeDNSHook"]),
    ("wildcard-http01", "", NAMES,
     ["*.example.test", "AcmeChallenge dns-01"]),
    ("bad-secret-file", "    AcmeChallenge dns-01\n"
     "    AcmeDNSUpdate 127.0.0.1:53 acme-key file:/nonexistent/k.conf", NAMES,
     ["AcmeDNSUpdate", "/nonexistent/k.conf"]),
    ("bad-secret", "    AcmeChallenge dns-01\n"
     "    AcmeDNSUpdate 127.0.0.1:53 acme-key s3cr3t*not+base64!!", NAMES,
     ["AcmeDNSUpdate", "TSIG secret"]),
    ("bad-server", "    AcmeChallenge dns-01\n"
     "    AcmeDNSUpdate 127.0.0.1:99999 acme-key c2VjcmV0", NAMES,
     ["AcmeDNSUpdate", "'127.0.0.1:99999' is not a DNS server"]),
]


@pytest.mark.parametrize("case_id,extra,names,words", CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_dns01_config_errors(case_id, extra, names, words, apache_factory,
                             pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = apache_factory()
    srv.write_conf(managed_conf(pebble, state_dir, names=names,
                                issuer_extra=extra))
    rc, out = srv.test_config()
    assert rc != 0, out
    for w in words:
        assert w in out, (w, out)
    assert re.search(r"(line \d+ of /|\.conf:\d+)", out), out
    assert "s3cr3t" not in out


def test_dns01_config_ok(apache_factory, pebble_factory, state_dir):
    secret = base64.b64encode(bytes(range(32))).decode()
    pebble = pebble_factory(start=False)
    srv = apache_factory()
    srv.write_conf(managed_conf(pebble, state_dir, names=NAMES, issuer_extra=(
        "    AcmeChallenge dns-01\n"
        "    AcmeDNSUpdate [::1]:5353 acme-key %s hmac-sha256 zone=example.test\n"
        "    AcmeDNSPropagationCheck 127.0.0.1 ns.example.test:5353 120s"
        % secret)))
    rc, out = srv.test_config()
    assert rc == 0, out
    assert secret not in out

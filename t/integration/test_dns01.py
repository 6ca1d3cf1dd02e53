"""nginx and Apache: dns-01 and wildcard certificates (docs/design.md
"dns-01") against a real BIND 9 (bind9.py) on loopback, authoritative for
example.test, with pebble's -dnsserver pointed at it, so pebble validates
the TXT records the server sets: by RFC 2136 updates signed with TSIG
(dns_update / AcmeDNSUpdate) or by a hook program (dns_hook / AcmeDNSHook,
a shell script calling nsupdate).  The records are removed afterwards, also
after a failure or a reload; each failing step is a clear per-certificate
error; configuration mistakes are configuration-test errors naming the
directive with file:line.  Nothing answers http-01 or tls-alpn-01 here."""

import base64
import os
import re
import stat

import pytest

from bind9 import Bind9
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

NAMES = ("example.test", "*.example.test")
RECORD = "_acme-challenge.example.test"
ISSUE_TIMEOUT = 90
FAIL_TIMEOUT = 60
WRONG_SECRET = base64.b64encode(bytes(range(32))).decode()


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


@pytest.fixture
def dns_pebble(pebble_factory, bind):
    return pebble_factory(dns_server="127.0.0.1:%d" % bind.port)


@pytest.fixture
def root_file(dns_pebble, workdir):
    return dns_pebble.write_root(os.path.join(workdir, "root.pem"))


def _secret(bind):
    return re.search(r'secret "([^"]+)"', bind.key_text).group(1)


def _key_file(workdir, bind):
    path = os.path.join(workdir, "acme-key.conf")
    with open(path, "w") as f:
        f.write(bind.key_text)
    os.chmod(path, 0o600)           # read by the root master / parent at config time
    return path


# every hook records its arguments, its user and its environment's names
HOOK_HEAD = """\
echo "$#|$1|$2|$3" >> {rec}/calls
id -un > {rec}/user
env | cut -d= -f1 | sort > {rec}/env
"""

HOOK_NSUPDATE = """\
case "$1" in add) op=add ;; remove) op=delete ;; *) exit 2 ;; esac
printf 'server 127.0.0.1 {port}\\nzone example.test\\nupdate %s _acme-challenge.%s 60 TXT "%s"\\nsend\\n' \\
    "$op" "$2" "$3" | nsupdate -y hmac-sha256:acme-key:{secret}
"""

HOOK_FAIL = """\
echo "zone example.test is not ours" >&2
exit 3
"""

# "add" hangs (with a child of its own); "remove" answers at once
HOOK_HANG = """\
[ "$1" = remove ] && exit 0
echo "waiting for the DNS provider" >&2
sleep 300
"""


def _hook(workdir, bind, body):
    """An executable hook script and the directory it records into (both
    usable by the worker / child user)."""
    rec = os.path.join(workdir, "hook-rec")
    os.makedirs(rec, exist_ok=True)
    os.chmod(rec, 0o777)
    path = os.path.join(workdir, "dns-hook.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + (HOOK_HEAD + body).format(rec=rec, port=bind.port,
                                                         secret=_secret(bind)))
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP
             | stat.S_IROTH | stat.S_IXOTH)
    return path, rec


def _calls(rec):
    """[[argc, op, domain, txt]] of the hook's calls so far."""
    path = os.path.join(rec, "calls")
    text = open(path).read() if os.path.exists(path) else ""
    return [line.split("|") for line in text.split()]


def _start(server, pebble, state_dir, *lines):
    """The managed server for NAMES with dns-01 and the given issuer lines."""
    server.start_managed(pebble, state_dir, names=NAMES,
                         issuer=[{"challenge": "dns-01"}] + list(lines))
    return server


def _status(server):
    return server.status_cert(host="example.test")


def _txt_gone(bind):
    return wait_for(lambda: bind.dig(RECORD) == [], 30, "TXT records removed")


def _issued(server, root_file):
    # a name that only the wildcard covers, without a restart
    cert = wait_acme_cert(server.https_port, "x.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert not is_self_signed(cert)
    assert sans(cert) == ["*.example.test", "example.test"]
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(_status(server)),
                 20, "state valid")
    assert c["challenge"] == "dns-01" and c["last_error"] is None, c
    return cert


def test_dns01_rfc2136_wildcard(server, dns_pebble, bind, root_file, state_dir, workdir):
    _start(server, dns_pebble, state_dir,
           server.dns_update("127.0.0.1:%d" % bind.port, "acme-key",
                             secret_file=_key_file(workdir, bind), alg="hmac-sha256"))
    _issued(server, root_file)
    # both TXT records (one per authorization, both example.test) are gone
    _txt_gone(bind)
    log = server.error_log()
    assert len(re.findall(r'_acme-challenge\.example\.test TXT "[^"]+" is visible', log)) == 2, \
        log[-3000:]
    assert "_acme-challenge.example.test TXT" in log and "removed" in log
    # one line per record (common/io/acme_dns_publish.c), not a second from the adapter
    assert 'dns-01 TXT record for "example.test" is visible' not in log, log[-3000:]
    if server.kind == "nginx":
        assert "cannot remove" not in log
    assert _secret(bind) not in log
    assert not server.problems(), server.problems()


def test_dns01_hook(server, dns_pebble, bind, root_file, state_dir, workdir):
    hook, rec = _hook(workdir, bind, HOOK_NSUPDATE)
    _start(server, dns_pebble, state_dir, server.dns_hook(hook, "30s"),
           server.dns_propagation_check(["127.0.0.1:%d" % bind.port], "30s"))
    _issued(server, root_file)
    _txt_gone(bind)
    calls = _calls(rec)
    adds = [c for c in calls if c[1] == "add"]
    removes = [c for c in calls if c[1] == "remove"]
    # one authorization per identifier (both are example.test), 3 arguments,
    # the domain without "*.", the TXT value base64url(SHA-256) = 43 chars
    assert len(adds) == 2 and len(calls) == 4, calls
    for c in calls:
        assert c[0] == "3" and c[2] == "example.test", c
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", c[3]), c
    assert sorted(a[3] for a in adds) == sorted(r[3] for r in removes)
    # each value removed after it was added
    for a in adds:
        assert calls.index(a) < calls.index(["3", "remove", a[2], a[3]]), calls
    # run as the worker / child user, no shell, the environment cleared but
    # for PATH (sh itself adds PWD, SHLVL, ...)
    assert open(os.path.join(rec, "user")).read().strip() == server.raw.user
    env = set(open(os.path.join(rec, "env")).read().split())
    assert "PATH" in env and env <= {"PATH", "PWD", "SHLVL", "_", "OLDPWD"}, env
    assert not server.problems(), server.problems()


# (case id, hook body or None for a dns_update with a wrong TSIG secret,
# hook timeout, propagation check timeout, words of the status' last_error
# and the log, words of the log only).  The propagation check asks a port
# where nothing answers.
FAIL_CASES = [
    ("hook-exit3", HOOK_FAIL, "30s", "10s",
     ["dns hook add example.test", "exited with status 3",
      "zone example.test is not ours"], ["dns hook: zone example.test is not ours"]),
    ("hook-timeout", HOOK_HANG, "1s", "10s",
     ["dns hook add example.test", "killed after 1 s"],
     ["dns hook: waiting for the DNS provider"]),
    ("not-visible", HOOK_NSUPDATE, "30s", "3s",
     ["dns propagation", "_acme-challenge.example.test TXT", "127.0.0.1:{dead}",
      "after 3 s"], []),
    ("update-badsig", None, None, None,
     ["dns-01 update", "key acme-key", "BADSIG"], []),
]


@pytest.mark.parametrize("case_id,body,hook_timeout,check_timeout,words,log_words",
                         FAIL_CASES, ids=[c[0] for c in FAIL_CASES])
def test_dns01_failure(server, case_id, body, hook_timeout, check_timeout, words, log_words,
                       dns_pebble, bind, state_dir, workdir):
    """Each failing step is a clear per-certificate error (status and log);
    the hook is asked to remove the record after a failure too, and the
    record it set is gone."""
    dead = bind.port + 1                    # nothing answers there
    if body is not None:
        hook, rec = _hook(workdir, bind, body)
        lines = [server.dns_hook(hook, hook_timeout),
                 server.dns_propagation_check(
                     ["127.0.0.1:%d" % (dead if case_id == "not-visible" else bind.port)],
                     check_timeout)]
    else:
        lines = [server.dns_update("127.0.0.1:%d" % bind.port, "acme-key", WRONG_SECRET)]
    _start(server, dns_pebble, state_dir, *lines)

    def failed():
        c = _status(server)
        return c if c["last_error"] and c["consecutive_failures"] >= 1 else None
    c = wait_for(failed, FAIL_TIMEOUT, "a failed attempt in the status")
    assert c["state"] == "failed" and c["challenge"] == "dns-01", c
    log = server.error_log()
    for w in words:
        w = w.format(dead=dead)
        assert w in c["last_error"], (w, c)
        assert w in log, w
    for w in log_words:
        assert w in log, (w, log[-3000:])
    if server.kind == "nginx":
        assert "order failed: " + c["last_error"].split(":")[0] in log, log[-3000:]
    assert WRONG_SECRET not in log
    if body is not None:
        # removed also after the failure
        wait_for(lambda: [c[1] for c in _calls(rec)] == ["add", "remove"], 10,
                 "hook remove after the failure")
        # the hook records its call before it runs nsupdate: wait for it
        _txt_gone(bind)
    assert not server.problems(), server.problems()


def test_dns01_reload_removes_records(server, dns_pebble, bind, state_dir, workdir):
    """A reload (nginx HUP, Apache's graceful restart) while the order waits
    for propagation: the old worker / driving child gives up and still
    removes the record it set before it exits; so does a stop."""
    hook, rec = _hook(workdir, bind, HOOK_NSUPDATE)
    dead = bind.port + 1                    # the record never shows there
    _start(server, dns_pebble, state_dir, server.dns_hook(hook, "20s"),
           server.dns_propagation_check(["127.0.0.1:%d" % dead], "60s"))

    def values(op):
        return [c[3] for c in _calls(rec) if c[1] == op]

    first = wait_for(lambda: values("add"), 20, "hook add")[0]
    # the hook records its call before it runs nsupdate
    wait_for(lambda: bind.dig(RECORD) == [first], 10, "the record set by the hook")
    server.reload()
    wait_for(lambda: first in values("remove"), 20, "hook remove after the reload")
    wait_for(lambda: first not in (bind.dig(RECORD) or []), 10,
             "the record gone after the hook's remove")
    assert not server.problems(), server.problems()
    # the new generation's order sets a record of its own: a stop removes it
    second = wait_for(lambda: [v for v in values("add") if v != first], 20,
                      "hook add after the reload")[0]
    wait_for(lambda: second in (bind.dig(RECORD) or []), 10, "the second record")
    server.stop()
    wait_for(lambda: second in values("remove"), 20, "hook remove after the stop")
    wait_for(lambda: second not in (bind.dig(RECORD) or []), 10,
             "the second record gone after the hook's remove")
    assert not server.problems(), server.problems()


SECRET_BAD = "s3cr3t*not+base64!!"


def _config_case(server, case, workdir):
    """(issuer lines, certificate arguments, the line the error points at
    (a needle), words of the error) of a configuration mistake."""
    bad_file = os.path.join(workdir, "bad.key")
    with open(bad_file, "w") as f:
        f.write("not base64 !!!\n")
    nginx = server.kind == "nginx"
    update = server.dns_update
    return {
        # nginx names the challenge line, Apache the <AcmeIssuer> block's
        "no-publisher": ([{"challenge": "dns-01"}], "",
                         "challenge dns-01" if nginx else "<AcmeIssuer pebble>",
                         ["dns_update"] if nginx
                         else ["dns-01", "neither AcmeDNSUpdate nor AcmeDNSHook"]),
        # a certificate's own challenge=dns-01: at its line, on both servers
        "cert-no-publisher": ([], "challenge=dns-01",
                              "acme_certificate" if nginx else "AcmeCertificate",
                              ["challenge=dns-01", "neither",
                               "dns_update" if nginx else "AcmeDNSUpdate"]),
        # the names on the certificate line
        "wildcard-http01": ([], " ".join(NAMES),
                            "acme_certificate" if nginx else "AcmeCertificate",
                            ["needs dns-01"] if nginx
                            else ["*.example.test", "AcmeChallenge dns-01"]),
        # attempts rotate through the list: an http-01 attempt cannot
        # validate a wildcard, so every attempt must be dns-01 (both servers)
        "wildcard-list": ([{"challenge": "http-01 dns-01"},
                           update("127.0.0.1:53", "acme-key", "c2VjcmV0")], " ".join(NAMES),
                          "acme_certificate" if nginx else "AcmeCertificate",
                          ["needs dns-01"] if nginx
                          else ["*.example.test", "AcmeChallenge dns-01"]),
        "missing-key-file": ([update("127.0.0.1:53", "acme-key",
                                     secret_file="/nonexistent/k.conf")], "",
                             "dns_update" if nginx else "AcmeDNSUpdate",
                             ["dns_update" if nginx else "AcmeDNSUpdate",
                              "/nonexistent/k.conf"]),
        "bad-key-file": ([update("127.0.0.1", "k", secret_file=bad_file)], "",
                         "dns_update" if nginx else "AcmeDNSUpdate",
                         ["dns_update" if nginx else "AcmeDNSUpdate", "bad.key"]),
        "bad-inline-secret": ([update("127.0.0.1", "acme-key", SECRET_BAD)], "",
                              "dns_update" if nginx else "AcmeDNSUpdate",
                              ["dns_update" if nginx else "AcmeDNSUpdate",
                               "TSIG key", "acme-key"]),
        "bad-server": ([update("127.0.0.1:99999", "acme-key", "c2VjcmV0")], "",
                       "dns_update" if nginx else "AcmeDNSUpdate",
                       ["dns_update" if nginx else "AcmeDNSUpdate",
                        "'127.0.0.1:99999' is not a DNS server"]),
    }[case]


@pytest.mark.parametrize("case", ["no-publisher", "cert-no-publisher", "wildcard-http01", "wildcard-list",
                                  "missing-key-file",
                                  "bad-key-file", "bad-inline-secret", "bad-server"])
def test_dns01_config_errors(server, case, pebble_factory, workdir, state_dir):
    pebble = pebble_factory(start=False)
    issuer, cert_args, needle, words = _config_case(server, case, workdir)
    server.write_managed(pebble, state_dir, names=NAMES, issuer=issuer, cert_args=cert_args)
    rc, out = server.test_config()
    assert rc != 0, out
    for w in words:
        assert w in out, (w, out)
    # the error names the directive's file:line
    path, line = server.raw.conf_path, server.conf_line(needle)
    assert ("%s:%d" % (path, line)) in out or ("line %d of %s" % (line, path)) in out, \
        (needle, line, out)
    assert SECRET_BAD not in out and "s3cr3t" not in out


def test_dns01_config_ok(server, pebble_factory, state_dir):
    """Names from server_name / ServerAlias may include "*.name" with
    dns-01; an IPv6 update server, a zone, several propagation check
    servers (a host name among them) and a timeout with a unit."""
    secret = base64.b64encode(bytes(range(32))).decode()
    pebble = pebble_factory(start=False)
    server.write_managed(pebble, state_dir, names=NAMES, issuer=[
        {"challenge": "dns-01"},
        server.dns_update("[::1]:5353", "acme-key", secret, alg="hmac-sha256",
                          zone="example.test"),
        server.dns_propagation_check(["127.0.0.1", "ns.example.test:5353"], "120s")])
    rc, out = server.test_config()
    assert rc == 0, out
    assert secret not in out

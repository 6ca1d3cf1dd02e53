"""nginx: dns-01 (docs/design.md "dns-01 (issue 4)").  A real BIND 9 (bind9.py)
is authoritative for example.test on loopback and pebble's -dnsserver points at
it, so pebble validates the TXT records nginx sets: through RFC 2136 + TSIG
(dns_update) or through a hook program that itself runs nsupdate.  Nothing
answers http-01 or tls-alpn-01 here."""

import os
import re
import stat

import pytest

from bind9 import Bind9
from nginx_server import HTTPS_PORT, get_status, status_cert
from pebble import HTTP_PORT
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 60
RECORD = "_acme-challenge.example.test"

CONF = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
        challenge dns-01;
        @DNS@
    }

    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name @NAMES@;
        acme_certificate pebble @NAMES@;
        location / { return 200 "hello from $host\\n"; }
    }

    server {
        listen 127.0.0.1:@HTTP@;
        location = /acme-status { acme_status; }
    }
"""

HOOK = """#!/bin/sh
# records its arguments and environment, then does the update with nsupdate
{ echo "CALL $#|$1|$2|$3"; env | cut -d= -f1 | sed 's/^/ENV /'; } >> @CALLS@
@FAIL@
case "$1" in
add) op="update add $RECORD_PREFIX$2 60 TXT \\"$3\\"" ;;
remove) op="update delete $RECORD_PREFIX$2 TXT \\"$3\\"" ;;
*) exit 2 ;;
esac
printf 'server 127.0.0.1 @PORT@\\nzone example.test\\n%s\\nsend\\n' "$op" \\
    | nsupdate -y 'hmac-sha256:acme-key:@SECRET@'
"""


@pytest.fixture
def bind(workdir):
    b = Bind9(workdir)
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
    os.chmod(path, 0o600)
    return path


FAILS = {
    "exit3": 'echo "zone example.test is locked" >&2; exit 3',
    "timeout": 'echo "hanging" >&2; sleep 30',
}


def _hook(workdir, bind, fail=None):
    d = os.path.join(workdir, "hook")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)                      # the worker user writes calls.txt
    calls = os.path.join(d, "calls.txt")
    script = HOOK.replace("$RECORD_PREFIX", "_acme-challenge.")
    script = (script.replace("@CALLS@", calls).replace("@PORT@", str(bind.port))
              .replace("@SECRET@", _secret(bind))
              .replace("@FAIL@", FAILS.get(fail, "")))
    path = os.path.join(d, "hook.sh")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    return path, calls


def _server(nginx_factory, pebble, state_dir, dns, names):
    srv = nginx_factory()
    srv.write_conf(CONF, URI=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   DNS=dns, NAMES=names, HTTPS=HTTPS_PORT, HTTP=HTTP_PORT)
    return srv


def _issued(srv, sni, root_file, names):
    cert = wait_acme_cert(HTTPS_PORT, sni, root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert not is_self_signed(cert)
    assert sorted(sans(cert)) == sorted(names)
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(
        status_cert(get_status(port=HTTP_PORT))), 20, "state valid")
    assert c["challenge"] == "dns-01" and c["last_error"] is None, c
    return cert


def test_dns01_rfc2136_wildcard(nginx_factory, dns_pebble, bind, root_file,
                                state_dir, workdir):
    key = _key_file(workdir, bind)
    srv = _server(nginx_factory, dns_pebble, state_dir,
                  "dns_update 127.0.0.1:%d key=acme-key secret=%s;" % (bind.port, key),
                  "*.example.test example.test")
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))

    # a name only the wildcard covers
    _issued(srv, "x.example.test", root_file, ["*.example.test", "example.test"])

    # both TXT records (one per authorization) are gone again
    assert wait_for(lambda: bind.dig(RECORD) == [], 20, "TXT removed") is not None
    log = srv.error_log()
    assert log.count("dns-01 TXT record for \"example.test\" is visible") == 2, log[-3000:]
    assert _secret(bind) not in log
    assert "cannot remove" not in log


def test_dns01_hook(nginx_factory, dns_pebble, bind, root_file, state_dir, workdir):
    hook, calls = _hook(workdir, bind)
    srv = _server(nginx_factory, dns_pebble, state_dir,
                  "dns_hook %s timeout=20s;\n"
                  "dns_propagation_check 127.0.0.1:%d timeout=20s;" % (hook, bind.port),
                  "a.example.test")
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))

    _issued(srv, "a.example.test", root_file, ["a.example.test"])

    text = open(calls).read()
    got = re.findall(r"^CALL (.*)$", text, re.M)
    assert len(got) == 2, text
    add, rm = got[0].split("|"), got[1].split("|")
    assert add[0] == "3" and add[1] == "add" and add[2] == "a.example.test"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", add[3]), add
    assert rm == ["3", "remove", "a.example.test", add[3]]
    # no shell, environment cleared except PATH (sh itself adds PWD)
    env = set(re.findall(r"^ENV (\S+)$", text, re.M))
    assert "PATH" in env and env <= {"PATH", "PWD", "OLDPWD", "SHLVL", "_"}, env
    wait_for(lambda: bind.dig("_acme-challenge.a.example.test") == [], 10,
             "the record removed")


# a hook that fails (exit 3, a message on stderr), one that hangs past its
# timeout, a record that never shows on the propagation check server
@pytest.mark.parametrize("fail", ["exit3", "timeout", "propagation"])
def test_dns01_failures(fail, nginx_factory, dns_pebble, bind, state_dir, workdir):
    hook, calls = _hook(workdir, bind, fail=fail)
    dead = bind.port + 1                    # nothing answers there
    srv = _server(nginx_factory, dns_pebble, state_dir,
                  "dns_hook %s timeout=%s;\n" % (hook, "1s" if fail == "timeout" else "20s")
                  + ("dns_propagation_check 127.0.0.1:%d timeout=1s;" % dead
                     if fail == "propagation" else ""),
                  "a.example.test")
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))

    c = wait_for(lambda: (lambda c: c if c["last_error"] else None)(
        status_cert(get_status(port=HTTP_PORT))), 30, "an error")
    assert c["challenge"] == "dns-01" and c["consecutive_failures"] >= 1, c
    err = c["last_error"]
    log = srv.error_log()
    if fail == "exit3":
        assert "dns hook" in err and "exited with status 3" in err, c
        assert "dns hook: zone example.test is locked" in log, log[-3000:]
    elif fail == "timeout":
        assert "dns hook" in err and "killed" in err, c
        assert "dns hook: hanging" in log, log[-3000:]
    else:
        assert "dns propagation" in err and "127.0.0.1:%d" % dead in err, c
    assert "order failed: " + err.split(":")[0] in log, log[-3000:]
    # removed also after the failure
    assert wait_for(lambda: re.findall(r"^CALL 3\|(\w+)\|", open(calls).read(), re.M)
                    == ["add", "remove"], 10, "remove called")
    # the hook logs its call before it runs nsupdate: wait for the removal
    wait_for(lambda: bind.dig("_acme-challenge.a.example.test") == [], 10,
             "the record removed")


@pytest.mark.parametrize("case", ["no_publisher", "wildcard_http01", "bad_key_file",
                                  "bad_server", "bad_inline_secret"])
def test_dns01_config_errors(case, nginx_factory, pebble_factory, workdir, state_dir):
    pebble = pebble_factory(start=False)
    keyfile = os.path.join(workdir, "bad.key")
    with open(keyfile, "w") as f:
        f.write("not base64 !!!\n")
    secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0!!"
    dns, names, needle, what = {
        "no_publisher": ("", "a.example.test", "challenge dns-01", "dns_update"),
        "wildcard_http01": ("challenge http-01;", "*.example.test", "acme_certificate",
                            "needs dns-01"),
        "bad_key_file": ("dns_update 127.0.0.1 key=k secret=%s;" % keyfile,
                         "a.example.test", "dns_update", "bad.key"),
        "bad_server": ("dns_update 127.0.0.1:99999 key=k secret=data:AAAA;",
                       "a.example.test", "dns_update", "invalid DNS server address"),
        "bad_inline_secret": ("dns_update 127.0.0.1 key=k secret=data:%s;" % secret,
                              "a.example.test", "dns_update", "TSIG key"),
    }[case]
    conf = CONF
    if case == "wildcard_http01":
        conf = conf.replace("challenge dns-01;", "")
    srv = nginx_factory()
    srv.write_conf(conf, URI=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=state_dir, DNS=dns, NAMES=names, HTTPS=HTTPS_PORT,
                   HTTP=HTTP_PORT)
    rc, out = srv.test_config()
    assert rc != 0, out
    assert what in out, out
    assert "%s:%d" % (srv.conf_path, srv.conf_line(needle)) in out, out
    assert secret not in out


def test_dns01_reload_removes_records(nginx_factory, dns_pebble, bind, state_dir, workdir):
    """A reload while the order waits for propagation: the old worker gives up
    and still removes the record it set."""
    hook, calls = _hook(workdir, bind)
    dead = bind.port + 1                    # the record never shows there
    srv = _server(nginx_factory, dns_pebble, state_dir,
                  "dns_hook %s timeout=20s;\n"
                  "dns_propagation_check 127.0.0.1:%d timeout=60s;" % (hook, dead),
                  "a.example.test")
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))

    def calls_of(op):
        return re.findall(r"^CALL 3\|%s\|a\.example\.test\|(\S+)$" % op,
                          open(calls).read() if os.path.exists(calls) else "", re.M)

    first = wait_for(lambda: calls_of("add"), 20, "hook add")[0]
    # the hook logs its call before it runs nsupdate
    wait_for(lambda: bind.dig("_acme-challenge.a.example.test") == [first], 10,
             "the record set by the hook")
    srv.reload()
    wait_for(lambda: first in calls_of("remove"), 20, "hook remove after the reload")
    wait_for(lambda: first not in (bind.dig("_acme-challenge.a.example.test") or []), 10,
             "the record gone after the hook's remove")


def test_dns01_config_ok_server_name_wildcard(nginx_factory, pebble_factory, workdir,
                                              state_dir):
    """Names taken from server_name may include "*.name" with dns-01."""
    pebble = pebble_factory(start=False)
    srv = nginx_factory()
    conf = CONF.replace("acme_certificate pebble @NAMES@;", "acme_certificate pebble;")
    srv.write_conf(conf, URI=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   DNS="dns_update 127.0.0.1:53 key=k secret=data:c2VjcmV0c2VjcmV0;",
                   NAMES="*.example.test example.test", HTTPS=HTTPS_PORT, HTTP=HTTP_PORT)
    rc, out = srv.test_config()
    assert rc == 0, out

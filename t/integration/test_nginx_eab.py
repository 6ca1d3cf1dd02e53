"""nginx: External Account Binding (external_account_key) against a pebble
that requires it.  The right key issues; a wrong key or none fails with an
error naming the acme_issuer (error log and status) and backs off; nginx -t
catches a missing or bad key, naming the directive and file:line, without
ever printing the key."""

import base64
import os
import re
import time

import pytest

from nginx_server import HTTPS_PORT, get_status, managed_http_conf, start_managed, status_cert
from tlsutil import is_self_signed, parse_rfc3339, sans, wait_acme_cert, wait_for

KID = "kid-nginx-1"
MAC = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
WRONG_MAC = base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")
ISSUE_TIMEOUT = 60
FAIL_TIMEOUT = 30


@pytest.fixture
def eab_pebble(pebble_factory):
    return pebble_factory(eab_keys={KID: MAC}, eab_required=True)


def _key_file(workdir, text, name="eab.key"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)       # read by the root master at config time
    return path


def _wait_failed():
    def failed():
        c = status_cert(get_status())
        return c if c["last_error"] and c["consecutive_failures"] >= 1 else None
    return wait_for(failed, FAIL_TIMEOUT, "a failed attempt in the status")


def _assert_backs_off(srv, pebble, c):
    """The next attempt is in the future, and an observation window (not a
    threshold) sees no new account attempt: no retry storm."""
    doc = get_status()
    assert parse_rfc3339(c["next_renewal"]) > parse_rfc3339(doc["generated_at"])
    accounts = pebble.count_requests("/sign-me-up")
    time.sleep(2)
    assert pebble.count_requests("/sign-me-up") == accounts
    assert status_cert(get_status())["consecutive_failures"] == c["consecutive_failures"]
    assert srv.running()


def test_eab_right_key_issues(nginx_factory, eab_pebble, state_dir, workdir):
    root_file = eab_pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = _key_file(workdir, MAC + "\n")
    srv = start_managed(nginx_factory(), eab_pebble, state_dir,
                        issuer_extra="external_account_key %s %s alg=HS256;"
                                     % (KID, key_file))
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert not is_self_signed(cert)
    assert sans(cert) == ["a.example.test", "b.example.test"]
    assert MAC not in srv.error_log()
    assert os.path.exists(os.path.join(state_dir, "account.json"))
    assert not srv.alerts(), srv.alerts()


def test_eab_wrong_key_clear_error(nginx_factory, eab_pebble, state_dir):
    # inline "data:" key, as ssl_certificate accepts
    srv = start_managed(nginx_factory(), eab_pebble, state_dir,
                        issuer_extra="external_account_key %s data:%s;" % (KID, WRONG_MAC))
    c = _wait_failed()
    assert 'acme_issuer "pebble"' in c["last_error"], c
    assert KID in c["last_error"] and "External Account Binding" in c["last_error"], c
    assert c["state"] == "failed", c
    _assert_backs_off(srv, eab_pebble, c)
    log = srv.error_log()
    assert 'acme_issuer "pebble"' in log and "External Account Binding" in log
    assert WRONG_MAC not in log and WRONG_MAC not in c["last_error"]
    assert not os.path.exists(os.path.join(state_dir, "account.json"))


def test_eab_missing_clear_error(nginx_factory, eab_pebble, state_dir):
    srv = start_managed(nginx_factory(), eab_pebble, state_dir)
    c = _wait_failed()
    assert 'acme_issuer "pebble" requires External Account Binding' in c["last_error"], c
    assert "external_account_key" in c["last_error"], c
    assert c["state"] == "failed", c
    _assert_backs_off(srv, eab_pebble, c)
    log = srv.error_log()
    assert 'acme_issuer "pebble" requires External Account Binding' in log


SECRET_BAD = "s3cr3t*not+base64!!"
# name -> (external_account_key arguments, words the error must contain)
CONFIG_CASES = {
    "missing-file": ("%s /nonexistent/eab.key" % KID,
                     ["external_account_key", KID, "/nonexistent/eab.key"]),
    "bad-key-file": ("%s @BADFILE@" % KID, ["external_account_key", KID, "@BADFILE@"]),
    "bad-key-inline": ("%s data:%s" % (KID, SECRET_BAD), ["external_account_key", KID]),
    "empty-inline": ("%s data:" % KID, ["external_account_key", KID]),
    "bad-alg": ("%s data:%s alg=RS256" % (KID, MAC), ["external_account_key", "alg=RS256"]),
    "no-key": (KID, ["external_account_key"]),
    "twice": ("%s data:%s;\n        external_account_key %s data:%s" % (KID, MAC, KID, MAC),
              ["external_account_key", "duplicate"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_eab_config_errors(case, nginx_factory, pebble_factory, state_dir, workdir):
    args, words = CONFIG_CASES[case]
    bad = _key_file(workdir, SECRET_BAD + "\n", "bad.key")
    args = args.replace("@BADFILE@", bad)
    words = [w.replace("@BADFILE@", bad) for w in words]
    pebble = pebble_factory(start=False)
    srv = nginx_factory()
    srv.write_conf(managed_http_conf(pebble, state_dir,
                                     issuer_extra="external_account_key %s;   # EAB_LINE"
                                                  % args))
    rc, out = srv.test_config()
    assert rc != 0, out
    assert "[emerg]" in out, out
    for w in words:
        assert w in out, (w, out)
    lines = [int(n) for n in re.findall(re.escape(srv.conf_path) + r":(\d+)", out)]
    assert lines, out
    first = srv.conf_line("EAB_LINE")
    assert any(first <= n <= first + 1 for n in lines), (lines, first, out)
    assert SECRET_BAD not in out and MAC not in out


@pytest.mark.parametrize("alg", ["", " alg=HS384", " alg=HS512"])
def test_eab_config_ok(alg, nginx_factory, pebble_factory, state_dir, workdir):
    pebble = pebble_factory(start=False)
    key_file = _key_file(workdir, MAC + "\n")
    srv = nginx_factory()
    srv.write_conf(managed_http_conf(pebble, state_dir,
                                     issuer_extra="external_account_key %s %s%s;"
                                                  % (KID, key_file, alg)))
    rc, out = srv.test_config()
    assert rc == 0, out
    assert MAC not in out

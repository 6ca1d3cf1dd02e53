"""nginx and Apache: External Account Binding (external_account_key /
AcmeExternalAccountBinding) against a pebble that requires it.  The right
key issues; a wrong key or none fails with an error naming the issuer block
(error log and status) and backs off; the configuration test catches a
missing or bad key, naming the directive (nginx: and file:line), without
ever printing the key."""

import base64
import os
import re
import time

import pytest

from servers import HTTPS_PORT
from tlsutil import is_self_signed, parse_rfc3339, sans, wait_acme_cert, wait_for

KID = "kid-test-1"
MAC = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
WRONG_MAC = base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")
ISSUE_TIMEOUT = 60
FAIL_TIMEOUT = 30

# how each server names the issuer block and the directive in its messages
ISSUER_REF = {"nginx": 'acme_issuer "pebble"', "apache": "<AcmeIssuer pebble>"}
DIRECTIVE = {"nginx": "external_account_key", "apache": "AcmeExternalAccountBinding"}


@pytest.fixture
def eab_pebble(pebble_factory):
    return pebble_factory(eab_keys={KID: MAC}, eab_required=True)


def _key_file(workdir, text, name="eab.key"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)       # read by the root master / parent at config time
    return path


def _eab(server, key_file=None, inline=None, alg="", kid=KID):
    """The EAB line of the issuer block: the key from key_file or inline
    (nginx "data:KEY", as ssl_certificate accepts; Apache the bare key)."""
    if server.kind == "nginx":
        key = key_file if key_file else "data:" + inline
        return "external_account_key %s %s%s;" % (kid, key, (" alg=" + alg) if alg else "")
    key = ("file:" + key_file) if key_file else inline
    return "    AcmeExternalAccountBinding %s %s %s" % (kid, key, alg)


def _wait_failed(server):
    def failed():
        c = server.status_cert()
        return c if c["last_error"] and c["consecutive_failures"] >= 1 else None
    return wait_for(failed, FAIL_TIMEOUT, "a failed attempt in the status")


def _assert_backs_off(server, pebble, c):
    """The next attempt is in the future, and an observation window (not a
    threshold) sees no new account attempt: no retry storm."""
    doc = server.status()
    assert parse_rfc3339(c["next_renewal"]) > parse_rfc3339(doc["generated_at"])
    accounts = pebble.count_requests("/sign-me-up")
    time.sleep(2)
    assert pebble.count_requests("/sign-me-up") == accounts
    assert server.status_cert()["consecutive_failures"] == c["consecutive_failures"]
    assert server.running()


def test_eab_right_key_issues(server, eab_pebble, state_dir, workdir):
    root_file = eab_pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = _key_file(workdir, MAC + "\n")
    server.start_managed(eab_pebble, state_dir,
                         issuer=_eab(server, key_file=key_file, alg="HS256"))
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert not is_self_signed(cert)
    assert sans(cert) == ["a.example.test", "b.example.test"]
    assert MAC not in server.error_log()
    assert os.path.exists(os.path.join(state_dir, "account.json"))
    assert not server.problems(), server.problems()


def test_eab_wrong_key_clear_error(server, eab_pebble, state_dir):
    server.start_managed(eab_pebble, state_dir, issuer=_eab(server, inline=WRONG_MAC))
    c = _wait_failed(server)
    ref = ISSUER_REF[server.kind]
    assert ref in c["last_error"], c
    assert KID in c["last_error"] and "External Account Binding" in c["last_error"], c
    assert c["state"] == "failed", c
    _assert_backs_off(server, eab_pebble, c)
    log = server.error_log()
    assert ref in log and "External Account Binding" in log
    assert WRONG_MAC not in log and WRONG_MAC not in c["last_error"]
    assert not os.path.exists(os.path.join(state_dir, "account.json"))


def test_eab_missing_clear_error(server, eab_pebble, state_dir):
    server.start_managed(eab_pebble, state_dir)
    c = _wait_failed(server)
    ref, directive = ISSUER_REF[server.kind], DIRECTIVE[server.kind]
    assert ref in c["last_error"], c
    assert "External Account Binding" in c["last_error"], c
    assert directive in c["last_error"], c
    if server.kind == "nginx":
        assert 'acme_issuer "pebble" requires External Account Binding' in c["last_error"], c
    assert c["state"] == "failed", c
    _assert_backs_off(server, eab_pebble, c)
    log = server.error_log()
    assert ref in log and directive in log
    if server.kind == "nginx":
        assert 'acme_issuer "pebble" requires External Account Binding' in log


SECRET_BAD = "s3cr3t*not+base64!!"
# (server, case id, EAB line(s) of the issuer block, words the error must
# contain): each server's own syntax and messages
CONFIG_CASES = [
    ("nginx", "missing-file", "external_account_key %s /nonexistent/eab.key;" % KID,
     ["external_account_key", KID, "/nonexistent/eab.key"]),
    ("nginx", "bad-key-file", "external_account_key %s @BADFILE@;" % KID,
     ["external_account_key", KID, "@BADFILE@"]),
    ("nginx", "bad-key-inline", "external_account_key %s data:%s;" % (KID, SECRET_BAD),
     ["external_account_key", KID]),
    ("nginx", "empty-inline", "external_account_key %s data:;" % KID,
     ["external_account_key", KID]),
    ("nginx", "bad-alg", "external_account_key %s data:%s alg=RS256;" % (KID, MAC),
     ["external_account_key", "'RS256'"]),
    ("nginx", "no-key", "external_account_key %s;" % KID, ["external_account_key"]),
    ("nginx", "twice", "external_account_key %s data:%s;\n        external_account_key %s data:%s;"
     % (KID, MAC, KID, MAC), ["external_account_key", "duplicate"]),
    ("apache", "bad-key", "    AcmeExternalAccountBinding %s %s" % (KID, SECRET_BAD),
     ["AcmeExternalAccountBinding", KID, "MAC key"]),
    ("apache", "missing-file", "    AcmeExternalAccountBinding %s file:/nonexistent/eab.key" % KID,
     ["AcmeExternalAccountBinding", "/nonexistent/eab.key"]),
    ("apache", "bad-alg", "    AcmeExternalAccountBinding %s %s RS256" % (KID, MAC),
     ["AcmeExternalAccountBinding", "'RS256'"]),
    ("apache", "no-key", "    AcmeExternalAccountBinding %s" % KID, ["AcmeExternalAccountBinding"]),
    ("apache", "twice", "    AcmeExternalAccountBinding %s %s\n" % (KID, MAC) * 2,
     ["given twice"]),
]


@pytest.mark.parametrize("server,case_id,line,words", CONFIG_CASES, indirect=["server"],
                         ids=["%s-%s" % (c[0], c[1]) for c in CONFIG_CASES])
def test_eab_config_errors(server, case_id, line, words, pebble_factory, state_dir, workdir):
    bad = _key_file(workdir, SECRET_BAD + "\n", "bad.key")
    line = line.replace("@BADFILE@", bad)
    words = [w.replace("@BADFILE@", bad) for w in words]
    pebble = pebble_factory(start=False)
    if server.kind == "nginx":
        line = line.rstrip(";") + ";   # EAB_LINE"
    server.write_managed(pebble, state_dir, issuer=line)
    rc, out = server.test_config()
    assert rc != 0, out
    for w in words:
        assert w in out, (w, out)
    assert SECRET_BAD not in out and MAC not in out
    if server.kind == "nginx":
        assert "[emerg]" in out, out
        # the error names the file:line of the directive
        lines = [int(n) for n in re.findall(re.escape(server.raw.conf_path) + r":(\d+)", out)]
        assert lines, out
        first = server.conf_line("EAB_LINE")
        assert any(first <= n <= first + 1 for n in lines), (lines, first, out)


# Apache only: nginx's parser refuses a directive outside its block by itself
@pytest.mark.parametrize("server", ["apache"], indirect=True)
def test_eab_outside_issuer(server, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    server.raw.write_conf(server.conf(pebble, state_dir) + "\n"
                          + _eab(server, inline=MAC) + "\n")
    rc, out = server.test_config()
    assert rc != 0 and "only valid inside <AcmeIssuer" in out, out


@pytest.mark.parametrize("alg", ["", "HS384", "HS512"])
def test_eab_config_ok(server, alg, pebble_factory, state_dir, workdir):
    pebble = pebble_factory(start=False)
    key_file = _key_file(workdir, MAC + "\n")
    server.write_managed(pebble, state_dir, issuer=_eab(server, key_file=key_file, alg=alg))
    rc, out = server.test_config()
    assert rc == 0, out
    assert MAC not in out


def test_eab_config_ok_inline_lowercase_alg(server, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    server.write_managed(pebble, state_dir, issuer=_eab(server, inline=MAC, alg="hs512"))
    rc, out = server.test_config()
    assert rc == 0, out

"""Apache (mod_acme_auto): External Account Binding against a pebble that
requires it.  The right key issues; a wrong key or none fails with an error
naming the issuer (error log and status), backing off; configtest catches a
bad key without ever printing it."""

import base64
import os

import pytest

from apache_server import (HTTPS_PORT, apache_factory, get_status,  # noqa: F401 (fixture)
                           managed_conf, start_managed, status_cert)
from tlsutil import is_self_signed, parse_rfc3339, sans, wait_acme_cert, wait_for

KID = "kid-apache-1"
MAC = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
WRONG_MAC = base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")
ISSUE_TIMEOUT = 60
FAIL_TIMEOUT = 30


@pytest.fixture
def eab_pebble(pebble_factory):
    return pebble_factory(eab_keys={KID: MAC}, eab_required=True)


def _eab_line(kid, key, alg=""):
    return "    AcmeExternalAccountBinding %s %s %s" % (kid, key, alg)


def _wait_failed(srv):
    def failed():
        c = status_cert(get_status())
        return c if c["last_error"] and c["consecutive_failures"] >= 1 else None
    return wait_for(failed, FAIL_TIMEOUT, "a failed attempt in the status")


def test_eab_right_key_issues(apache_factory, eab_pebble, state_dir, workdir):
    root_file = eab_pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = os.path.join(workdir, "eab.key")
    with open(key_file, "w") as f:
        f.write(MAC + "\n")
    os.chmod(key_file, 0o600)       # read by the root parent at config time
    srv = start_managed(apache_factory(), eab_pebble, state_dir,
                        issuer_extra=_eab_line(KID, "file:" + key_file, "HS256"))
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=srv.running)
    assert not is_self_signed(cert)
    assert sans(cert) == ["a.example.test", "b.example.test"]
    assert MAC not in srv.error_log()
    assert not srv.crashes(), srv.crashes()


def test_eab_wrong_key_clear_error(apache_factory, eab_pebble, state_dir):
    srv = start_managed(apache_factory(), eab_pebble, state_dir,
                        issuer_extra=_eab_line(KID, WRONG_MAC))
    c = _wait_failed(srv)
    assert "<AcmeIssuer pebble>" in c["last_error"], c
    assert KID in c["last_error"], c
    assert c["state"] == "failed"
    # backing off: the next attempt is in the future
    assert parse_rfc3339(c["next_renewal"]) > parse_rfc3339(get_status()["generated_at"])
    log = srv.error_log()
    assert "<AcmeIssuer pebble>" in log
    assert WRONG_MAC not in log and WRONG_MAC not in c["last_error"]
    assert not os.path.exists(os.path.join(state_dir, "account.json"))


def test_eab_missing_clear_error(apache_factory, eab_pebble, state_dir):
    srv = start_managed(apache_factory(), eab_pebble, state_dir)
    c = _wait_failed(srv)
    assert "<AcmeIssuer pebble>" in c["last_error"], c
    assert "External Account Binding" in c["last_error"], c
    assert "AcmeExternalAccountBinding" in c["last_error"], c
    assert c["state"] == "failed"
    assert parse_rfc3339(c["next_renewal"]) > parse_rfc3339(get_status()["generated_at"])
    log = srv.error_log()
    assert "<AcmeIssuer pebble>" in log and "AcmeExternalAccountBinding" in log


SECRET_BAD = "s3cr3t*not+base64!!"
CONFIG_CASES = [
    ("bad-key", _eab_line(KID, SECRET_BAD), ["AcmeExternalAccountBinding", KID, "MAC key"]),
    ("missing-file", _eab_line(KID, "file:/nonexistent/eab.key"),
     ["AcmeExternalAccountBinding", "/nonexistent/eab.key"]),
    ("bad-alg", _eab_line(KID, MAC, "RS256"), ["AcmeExternalAccountBinding", "'RS256'"]),
    ("no-key", "    AcmeExternalAccountBinding %s" % KID, ["AcmeExternalAccountBinding"]),
    ("twice", _eab_line(KID, MAC) + "\n" + _eab_line(KID, MAC), ["given twice"]),
]


@pytest.mark.parametrize("case_id,line,words", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_eab_config_errors(case_id, line, words, apache_factory, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = apache_factory()
    srv.write_conf(managed_conf(pebble, state_dir, issuer_extra=line))
    rc, out = srv.test_config()
    assert rc != 0, out
    for w in words:
        assert w in out, (w, out)
    assert SECRET_BAD not in out and MAC not in out


def test_eab_outside_issuer(apache_factory, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = apache_factory()
    srv.write_conf(managed_conf(pebble, state_dir) + "\n" + _eab_line(KID, MAC) + "\n")
    rc, out = srv.test_config()
    assert rc != 0 and "only valid inside <AcmeIssuer" in out, out


def test_eab_config_ok(apache_factory, pebble_factory, state_dir):
    pebble = pebble_factory(start=False)
    srv = apache_factory()
    srv.write_conf(managed_conf(pebble, state_dir, issuer_extra=_eab_line(KID, MAC, "hs512")))
    rc, out = srv.test_config()
    assert rc == 0, out

"""retry_delay (nginx acme_issuer) / AcmeRetryDelay (Apache <AcmeIssuer>):
the first backoff step after a failed attempt, then 10 times it.  With the
CA down (DNS up, pebble not started) every attempt fails at once; with a
2 s delay the second attempt follows the first within seconds (the default
60 s would not fit the bounded wait), and the status' next_renewal is the
persisted next attempt, one step (+-10 % jitter) after the last one."""

import json
import os

import pytest

import apache_server
import nginx_server
from apache_server import apache_factory  # noqa: F401 (fixture)
from serverlib import status_cert
from tlsutil import parse_rfc3339, wait_for

CERT_ID = "a.example.test_ecdsa-256"


def start(kind, factory, p, state_dir, delay):
    if kind == "nginx":
        srv = nginx_server.start_managed(factory(), p, state_dir,
                                         issuer_extra="retry_delay %s;" % delay)
        return srv, nginx_server.get_status
    srv = apache_server.start_managed(factory(), p, state_dir,
                                      issuer_extra="    AcmeRetryDelay %s" % delay)
    return srv, apache_server.get_status


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_retry_delay_first_steps(kind, request, pebble_factory, state_dir):
    factory = request.getfixturevalue(kind + "_factory")
    p = pebble_factory(start=False)
    p.start_dns()                       # DNS up, the CA itself down
    srv, get_status = start(kind, factory, p, state_dir, "2s")
    state_json = os.path.join(state_dir, "certs", CERT_ID, "state.json")

    def persisted(n):
        def pred():
            try:
                with open(state_json) as f:
                    st = json.load(f)
            except (OSError, ValueError):
                return None
            return st if st.get("failures") == n else None
        return pred

    # the first failure: the next attempt one step (2 s, +-10 %) later
    st = wait_for(persisted(1), 60, "the first failure persisted")
    assert st["next_attempt"] - st["last_attempt"] in (2,), st

    # the second comes after the 2 s step (60 s would not fit this wait),
    # and backs off 10 times the step: 20 s +-10 %
    st = wait_for(persisted(2), 40, "the second failure persisted")
    assert 18 <= st["next_attempt"] - st["last_attempt"] <= 22, st

    def shown():
        c = status_cert(get_status())
        return c if c["consecutive_failures"] == 2 else None

    c = wait_for(shown, 20, "the second failure in the status")
    assert c["state"] == "failed", c
    assert c["last_error"], c
    # next_renewal is the persisted next attempt
    assert int(parse_rfc3339(c["next_renewal"]).timestamp()) == st["next_attempt"], (c, st)
    # one log line for both servers (acme_job_failure_text), at error level
    lines = [ln for ln in srv.error_log().splitlines()
             if "order failed: " + c["last_error"] in ln]
    assert any("2 consecutive failure(s), next attempt at " in ln
               and "error" in ln for ln in lines), srv.error_log()[-3000:]
    assert srv.running()

    # a restart shows the persisted failures at once (the status record is
    # filled from state.json at start); the next attempt is about 20 s
    # away, one more failure may have come by then on a slow machine
    srv.stop()
    srv.start()
    c = status_cert(get_status())
    assert c["consecutive_failures"] >= 2 and c["last_error"], c


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_retry_delay_bad_value(kind, request, pebble_factory, state_dir):
    factory = request.getfixturevalue(kind + "_factory")
    p = pebble_factory(start=False)
    srv = factory()
    if kind == "nginx":
        srv.write_conf(nginx_server.managed_http_conf(
            p, state_dir, issuer_extra="retry_delay 0s;"))
        needle = "retry_delay 0s;"
    else:
        srv.write_conf(apache_server.managed_conf(
            p, state_dir, issuer_extra="    AcmeRetryDelay soon"))
        needle = "AcmeRetryDelay soon"
    rc, out = srv.test_config()
    assert rc != 0, out
    assert "retry_delay" in out.lower() or "acmeretrydelay" in out.lower(), out
    line = srv.conf_line(needle)
    assert ":%d" % line in out or "line %d" % line in out, (line, out)


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_ari_poll_interval_bad_value(kind, request, pebble_factory, state_dir):
    """ari_poll_interval / AcmeARIPollInterval takes the same bounds as
    retry_delay (1s to 1d): 0 or a word is refused naming the directive and
    its line."""
    factory = request.getfixturevalue(kind + "_factory")
    p = pebble_factory(start=False)
    srv = factory()
    if kind == "nginx":
        srv.write_conf(nginx_server.managed_http_conf(
            p, state_dir, issuer_extra="ari_poll_interval 0s;"))
        needle, name = "ari_poll_interval 0s;", "ari_poll_interval"
    else:
        srv.write_conf(apache_server.managed_conf(
            p, state_dir, issuer_extra="    AcmeARIPollInterval 2d"))
        needle, name = "AcmeARIPollInterval 2d", "acmearipollinterval"
    rc, out = srv.test_config()
    assert rc != 0, out
    assert name in out.lower() and "unknown" not in out.lower() \
        and "invalid command" not in out.lower(), out
    line = srv.conf_line(needle)
    assert ":%d" % line in out or "line %d" % line in out, (line, out)

    # in range: accepted
    if kind == "nginx":
        srv.write_conf(nginx_server.managed_http_conf(
            p, state_dir, issuer_extra="ari_poll_interval 30m;"))
    else:
        srv.write_conf(apache_server.managed_conf(
            p, state_dir, issuer_extra="    AcmeARIPollInterval 1800"))
    rc, out = srv.test_config()
    assert rc == 0, out

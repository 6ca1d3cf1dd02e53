"""Both servers (issue 10 item 1): a certificate that no longer matches the
configuration is ordered again at once, not at its renewal window, while
the old one is served until the new one is installed; the status says why
("reason") and the error log says it at notice.

- the CA changes (staging -> production: the directory URL), then reload /
  graceful, or a full stop and start: the new CA's certificate, the old
  CA's account kept beside the new one;
- the key type changes (key=ecdsa:256 -> key=ecdsa:384 or rsa:2048: a new
  certificate id, "<first name>_<key type>"): the old id's certificate is
  served until the new one is issued, then only the new one;
- the first name changes (names "a b" -> "b c", or "c" added in front: a
  new id too): the old id's certificate is served for the names it covers
  until the new one is issued;
- contact or renew_before_expiry alone: nothing is ordered.

The two CAs are two real pebble instances (their own API ports, API
certificates and issuing roots; the second one uses the first one's
pebble-challtestsrv): the served chain verifies against the root of the CA
that issued it.  While a new certificate is due, its CA is down for the
first attempt, so that the old certificate being served, the status'
reason and the log line are seen for certain; it is started once the
status shows the failed attempt (retry_delay 1s)."""

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pebble import SECOND_SHIFT
from servers import HTTPS_PORT
from tlsutil import s_client_leaf, same_serial, served_cert, wait_acme_cert, wait_for

NAME = "a.example.test"
QUICK_RETRY = {"retry_delay": "1s"}


def _accounts(state_dir):
    """The account.json files of the store (the root's and accounts/*)."""
    found = []
    for base, _dirs, files in os.walk(state_dir):
        if "account.json" in files and os.sep + "certs" not in base:
            found.append(os.path.join(base, "account.json"))
    return sorted(found)


def _second_ca(pebble_factory, start=True):
    """CA B beside the `pebble` fixture's CA A (its DNS)."""
    return pebble_factory(start=start, name="pebble-b", port_shift=SECOND_SHIFT, dns=False)


def _failed_once(server, cert_id=None, host=NAME):
    c = server.status_cert(cert_id, host=host)
    return c if c["consecutive_failures"] >= 1 else None


def _notice(log, needle):
    lines = [ln for ln in log.splitlines() if needle in ln]
    assert lines, (needle, log[-3000:])
    assert all("notice" in ln for ln in lines), lines
    return lines


def _first_issue(server, pebble, workdir, state_dir, names=(NAME,), **conf):
    root_a = pebble.write_root(os.path.join(workdir, "root-a.pem"))
    server.start_managed(pebble, state_dir, names=list(names), **conf)
    first = wait_acme_cert(HTTPS_PORT, NAME, root_a, 60, proc_alive=server.running)
    server.wait_installed()
    wait_for(lambda: server.status_cert()["serial"], 20, "status serial")
    assert server.status_cert()["reason"] is None
    return first


def test_switch_ca_reorders_at_once(server, pebble, pebble_factory, workdir, state_dir):
    ca_b = _second_ca(pebble_factory)
    root_b = ca_b.write_root(os.path.join(workdir, "root-b.pem"))
    first = _first_issue(server, pebble, workdir, state_dir, issuer=QUICK_RETRY)
    accounts_a = _accounts(state_dir)
    assert len(accounts_a) == 1, accounts_a
    with open(accounts_a[0]) as f:
        account_a = f.read()
    assert pebble.directory_url in account_a

    # contact and renew_before_expiry: no order
    orders = pebble.orders_created()
    log_before = len(server.error_log())
    server.write_managed(pebble, state_dir, names=[NAME],
                         issuer=dict(QUICK_RETRY, contact="mailto:ops@example.test",
                                     renew_before_expiry="50%"))
    server.reload()
    wait_for(lambda: server.status_cert() is not None
             and server.status_cert()["state"] == "valid", 20, "valid again")
    log = server.error_log()[log_before:]
    assert "starting an order" not in log and "ordering a" not in log, log[-3000:]
    assert pebble.orders_created() == orders
    assert served_cert(HTTPS_PORT, NAME).serial_number == first.serial_number
    assert server.status_cert()["reason"] is None

    # CA B: re-ordered at once, from B (its root), while A's is served
    log_before = len(server.error_log())
    server.write_managed(ca_b, state_dir, names=[NAME], issuer=QUICK_RETRY)
    server.reload()
    new = wait_acme_cert(HTTPS_PORT, NAME, root_b, 60, proc_alive=server.running)
    assert new.serial_number != first.serial_number
    assert new.issuer != first.issuer, (new.issuer, first.issuer)
    assert ca_b.issued_count() == 1 and pebble.orders_created() == orders
    _notice(server.error_log()[log_before:], "issuer changed")

    # both accounts in the store, A's unchanged
    accounts = _accounts(state_dir)
    assert len(accounts) == 2, accounts
    with open(accounts_a[0]) as f:
        assert f.read() == account_a
    assert any(ca_b.directory_url in open(a).read() for a in accounts)

    # the status names the new CA, and once it is served, no reason
    wait_for(lambda: server.status_cert()["reason"] is None
             and server.status_cert()["directory"] == ca_b.directory_url,
             30, "status after the switch")
    assert not server.problems(), server.problems()


def test_switch_ca_full_restart(server, pebble, pebble_factory, workdir, state_dir):
    """Stop, the directory URL changed, start: the old CA's certificate is
    served from the first handshake, ordered again at once from the new CA
    (down for the first attempt), the reason shown until the new one is
    served."""
    ca_b = _second_ca(pebble_factory, start=False)
    first = _first_issue(server, pebble, workdir, state_dir, issuer=QUICK_RETRY)

    server.stop()
    server.write_managed(ca_b, state_dir, names=[NAME], issuer=QUICK_RETRY)
    server.start()
    assert served_cert(HTTPS_PORT, NAME).serial_number == first.serial_number
    c = wait_for(lambda: _failed_once(server), 60, "the first attempt at CA B failed")
    assert c["reason"] == "issuer changed", c
    assert same_serial(c["serial"], first.serial_number), c
    assert served_cert(HTTPS_PORT, NAME).serial_number == first.serial_number
    _notice(server.error_log(since_start=True), "issuer changed")

    ca_b.start()
    root_b = ca_b.write_root(os.path.join(workdir, "root-b.pem"))
    new = wait_acme_cert(HTTPS_PORT, NAME, root_b, 60, proc_alive=server.running)
    assert new.issuer != first.issuer
    wait_for(lambda: server.status_cert()["reason"] is None
             and server.status_cert()["directory"] == ca_b.directory_url,
             30, "status after the switch")
    assert ca_b.issued_count() == 1
    assert not server.problems(), server.problems()


KEY_CHANGES = {"ecdsa:384": ("ecdsa-384", lambda k: isinstance(k, ec.EllipticCurvePublicKey)
                                and isinstance(k.curve, ec.SECP384R1)),
               "rsa:2048": ("rsa-2048", lambda k: isinstance(k, rsa.RSAPublicKey))}


@pytest.mark.parametrize("new_key", sorted(KEY_CHANGES))
def test_key_type_change_serves_the_old_until_issued(server, pebble, workdir, state_dir,
                                                     new_key):
    """key=ecdsa:256 -> key=ecdsa:384 or rsa:2048 (a new id) on reload /
    graceful: the P-256 certificate stays served (the CA down for the first
    attempt), the new id ordered at once, "key type changed" in the status
    and the log, then the new one served, and only it (rsa:2048: a client
    that takes ECDSA only gets no certificate, not the old P-256 one)."""
    first = _first_issue(server, pebble, workdir, state_dir, issuer=QUICK_RETRY,
                         cert_args="key=ecdsa:256")
    assert isinstance(first.public_key().curve, ec.SECP256R1)
    suffix, is_new = KEY_CHANGES[new_key]
    old_id, new_id = NAME + "_ecdsa-256", NAME + "_" + suffix

    pebble.stop_pebble()
    log_before = len(server.error_log())
    server.write_managed(pebble, state_dir, names=[NAME], issuer=QUICK_RETRY,
                         cert_args="key=" + new_key)
    server.reload()
    c = wait_for(lambda: _failed_once(server, new_id), 60, "the first attempt failed")
    assert c["reason"] == "key type changed", c
    assert same_serial(c["serial"], first.serial_number), c
    assert served_cert(HTTPS_PORT, NAME).serial_number == first.serial_number
    _notice(server.error_log()[log_before:], "key type changed")

    pebble.start_pebble()

    def served_new():
        cert = served_cert(HTTPS_PORT, NAME)
        return cert if is_new(cert.public_key()) else None
    new = wait_for(served_new, 60, "the %s certificate served" % new_key)
    assert new.serial_number != first.serial_number
    wait_for(lambda: server.status_cert(new_id)["reason"] is None
             and same_serial(server.status_cert(new_id)["serial"], new.serial_number),
             30, "status after the key type change")
    if new_key.startswith("rsa"):
        def only_new():
            # a few handshakes: every worker / child has it installed
            # (server.wait_installed waits for the old id too)
            for _ in range(6):
                leaf = s_client_leaf(HTTPS_PORT, NAME, "-tls1_2", "-sigalgs", "RSA+SHA256")
                if leaf is None or leaf.serial_number != new.serial_number:
                    return False
                if s_client_leaf(HTTPS_PORT, NAME, "-tls1_2", "-sigalgs",
                                 "ECDSA+SHA256") is not None:
                    return False
            return True
        wait_for(only_new, 20, "the RSA certificate served alone")
    # the old id's store is kept (a change back serves it)
    assert os.path.exists(os.path.join(state_dir, "certs", old_id, "bundle.pem"))
    assert not server.problems(), server.problems()


RENAMES = {"b-c": ["b.example.test", "c.example.test"],
           "c-in-front": ["c.example.test", NAME, "b.example.test"]}


@pytest.mark.parametrize("rename", sorted(RENAMES))
def test_first_name_change_serves_the_old_until_issued(server, pebble, workdir, state_dir,
                                                       rename):
    """names "a b" -> "b c" (or "c a b": a name added in front), so a new
    id "<first name>_<key type>", on reload / graceful: the "a b"
    certificate stays served for b (the CA down for the first attempt), the
    new id ordered at once, "names changed" in the status and the log, then
    the new one (all its names) served."""
    first = _first_issue(server, pebble, workdir, state_dir,
                         names=(NAME, "b.example.test"), issuer=QUICK_RETRY)
    new_names = RENAMES[rename]
    new_id = new_names[0] + "_ecdsa-256"

    pebble.stop_pebble()
    log_before = len(server.error_log())
    server.write_managed(pebble, state_dir, names=new_names, issuer=QUICK_RETRY)
    server.reload()
    c = wait_for(lambda: _failed_once(server, new_id, host=new_names[0]), 60,
                 "the first attempt failed")
    assert c["reason"] == "names changed", c
    assert same_serial(c["serial"], first.serial_number), c
    assert served_cert(HTTPS_PORT, "b.example.test").serial_number == first.serial_number
    _notice(server.error_log()[log_before:], "names changed")

    pebble.start_pebble()

    def issued():
        c = server.status_cert(new_id, host=new_names[0])
        return c if c["serial"] and not same_serial(c["serial"], first.serial_number) else None
    c = wait_for(issued, 60, "the new certificate issued")

    def served_new():
        # a few handshakes: every worker / child has it installed
        certs = [served_cert(HTTPS_PORT, n) for n in new_names * 3]
        return certs[0] if all(same_serial(c["serial"], x.serial_number)
                               for x in certs) else None
    new = wait_for(served_new, 30, "the new certificate served for every name")
    san = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(new_names)
    wait_for(lambda: server.status_cert(new_id, host=new_names[0])["reason"] is None,
             30, "status after the names change")
    assert not server.problems(), server.problems()


def test_first_name_change_never_takes_a_configured_certificate(server, pebble, workdir,
                                                                 state_dir):
    """names "a b" -> "b c" while "a" stays configured on its own (its id is
    the old one's): the new "b c" id does not take the certificate that
    configured one owns (the placeholder is served for b until issued)."""
    first = _first_issue(server, pebble, workdir, state_dir,
                         names=(NAME, "b.example.test"), issuer=QUICK_RETRY)
    new_id = "b.example.test_ecdsa-256"

    pebble.stop_pebble()
    server.write_certs(pebble, state_dir, [(["b.example.test", "c.example.test"], ""),
                                           ([NAME], "")], issuer=QUICK_RETRY)
    server.reload()
    c = wait_for(lambda: _failed_once(server, new_id, host="b.example.test"), 60,
                 "the first attempt failed")
    assert c["serial"] is None, c
    assert served_cert(HTTPS_PORT, "b.example.test").serial_number != first.serial_number
    # the owner keeps serving it, ordered again for its names
    assert served_cert(HTTPS_PORT, NAME).serial_number == first.serial_number
    owner = server.status_cert(NAME + "_ecdsa-256", host="b.example.test")
    assert owner["reason"] == "names changed", owner
    assert not server.problems(), server.problems()

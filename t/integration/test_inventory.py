"""nginx and Apache: the status lists, after the managed certificates, every
certificate a server / vhost loads from a file (ssl_certificate,
SSLCertificateFile) with "managed": false: subject, SANs, issuer, serial,
validity, days left, expiring, key type, the servers that use it and the
file, one entry per file; read once per configuration load."""

import calendar
import datetime
import ipaddress
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from test_status_views import PROMTOOL, get, promtool_ok, samples
from tlsutil import parse_rfc3339, same_serial, wait_for

DAY = datetime.timedelta(days=1)


def _new_key(key_type):
    if key_type.startswith("rsa:"):
        return rsa.generate_private_key(65537, int(key_type[4:]))
    return ec.generate_private_key({"ecdsa:256": ec.SECP256R1(),
                                    "ecdsa:384": ec.SECP384R1()}[key_type])


def _make_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ngx_acme tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "inventory test CA")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 100 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(workdir, ca, name, sans, not_before, not_after, key_type="ecdsa:256"):
    """A certificate for sans (["DNS:x", "IP:1.2.3.4"]) signed by ca, valid
    [not_before, not_after); its key and certificate files."""
    ca_key, ca_cert = ca
    key = _new_key(key_type)
    alt = [x509.IPAddress(ipaddress.ip_address(s[3:])) if s.startswith("IP:")
           else x509.DNSName(s[4:]) for s in sans]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0][4:])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_path = os.path.join(workdir, name + ".key")
    crt_path = os.path.join(workdir, name + ".pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path, cert


def _static(server, name, crt, key):
    """An HTTPS server / vhost for name with its certificate from files."""
    if server.kind == "nginx":
        return """
    server {
        listen 127.0.0.1:%d ssl;
        server_name %s;
        ssl_certificate %s;
        ssl_certificate_key %s;
    }""" % (server.https_port, name, crt, key)
    return server.static_vhost(name, crt, key)


def _user(server, name):
    """How used_by names a server / vhost."""
    return name if server.kind == "nginx" else "%s:%d" % (name, server.https_port)


def _by_id(doc):
    return {c["id"]: c for c in doc["certificates"]}


def _days_left(not_after, now):
    return int((not_after - now).total_seconds() // 86400)


def test_inventory_lists_file_certificates(server, pebble_factory, workdir, state_dir):
    ca = _make_ca()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    shared = _leaf(workdir, ca, "shared", ["DNS:s1.example.test", "DNS:s2.example.test"],
                   now - DAY, now + 89 * DAY)
    # 2 days left of 90: inside the default warning window (10 %)
    soon = _leaf(workdir, ca, "soon", ["DNS:soon.example.test", "IP:192.0.2.10"],
                 now - 88 * DAY, now + 2 * DAY + datetime.timedelta(hours=1), "rsa:2048")
    old = _leaf(workdir, ca, "old", ["DNS:old.example.test"],
                now - 91 * DAY, now - DAY - datetime.timedelta(hours=1), "ecdsa:384")

    p = pebble_factory(start=False)         # the managed one needs no CA here
    more = [_static(server, "s1.example.test", shared[1], shared[0]),
            _static(server, "s2.example.test", shared[1], shared[0]),
            _static(server, "soon.example.test", soon[1], soon[0]),
            _static(server, "old.example.test", old[1], old[0])]
    server.raw.write_conf(server.conf(p, state_dir, names=["a.example.test"], more=more))
    rc, out = server.test_config()
    assert rc == 0, out
    server.start()

    doc = server.status()
    certs = _by_id(doc)
    generated = parse_rfc3339(doc["generated_at"]).replace(tzinfo=None)

    # the managed certificate first, as before, now with its users
    first = doc["certificates"][0]
    assert first["managed"] is True and first["id"].startswith("a.example.test"), first
    assert first["used_by"] == [_user(server, "a.example.test")], first
    assert first["sans"] == ["a.example.test"], first
    assert first["file"] is None

    # one entry per file, after the managed ones
    assert [c["managed"] for c in doc["certificates"]] == [True, False, False, False], doc
    assert set(certs) == {first["id"], shared[1], soon[1], old[1]}, doc

    ca_name = ca[1].subject.rfc4514_string()
    for (key, crt, cert), state, key_type, users, expiring in (
            (shared, "valid", "ecdsa:256", ["s1.example.test", "s2.example.test"], False),
            (soon, "valid", "rsa:2048", ["soon.example.test"], True),
            (old, "expired", "ecdsa:384", ["old.example.test"], True)):
        c = certs[crt]
        assert c["managed"] is False, c
        assert c["file"] == crt, c
        assert c["state"] == state, c
        assert c["key_type"] == key_type, c
        assert c["used_by"] == [_user(server, u) for u in users], c
        assert c["expiring"] is expiring, c
        assert same_serial(c["serial"], cert.serial_number), c
        assert c["ca_issuer"] == ca_name, c
        assert c["subject"] == cert.subject.rfc4514_string(), c
        assert parse_rfc3339(c["not_after"]).timestamp() == \
            calendar.timegm(cert.not_valid_after.utctimetuple())
        assert parse_rfc3339(c["not_before"]).timestamp() == \
            calendar.timegm(cert.not_valid_before.utctimetuple())
        assert c["days_left"] == _days_left(cert.not_valid_after, generated), c
        assert c["issuer"] is None and c["next_renewal"] is None, c
        assert c["last_error"] is None, c
    assert certs[soon[1]]["sans"] == ["soon.example.test", "192.0.2.10"]
    assert certs[soon[1]]["names"] == certs[soon[1]]["sans"]
    assert certs[soon[1]]["days_left"] == 2
    assert certs[old[1]]["days_left"] == -2
    assert certs[shared[1]]["sans"] == ["s1.example.test", "s2.example.test"]

    # the Prometheus view has them too, and still passes promtool
    st, _, text = get(server.http_port, "/acme-status?format=prometheus")
    assert st == 200, text
    if PROMTOOL:
        ok, out = promtool_ok(text, workdir)
        assert ok, out

    def value(name, cert_id, **extra):
        return [v for k, v in samples(text, name).items() if dict(k).get("id") == cert_id
                and all(dict(k).get(a) == b for a, b in extra.items())]
    assert value("acme_certificate_managed", old[1]) == [0]
    assert value("acme_certificate_state", old[1], state="expired") == [1]
    assert value("acme_certificate_state", soon[1], state="valid") == [1]

    # read once per configuration load: a new file is seen after a reload
    renewed = _leaf(workdir, ca, "shared", ["DNS:s1.example.test", "DNS:s2.example.test"],
                    now - DAY, now + 60 * DAY)
    assert same_serial(_by_id(server.status())[shared[1]]["serial"],
                       shared[2].serial_number)
    server.reload()
    wait_for(lambda: same_serial(_by_id(server.status())[shared[1]]["serial"],
                                 renewed[2].serial_number), 30, "the new file listed")
    assert not server.problems(), server.problems()


def test_bridge_is_not_listed_again(server, pebble_factory, workdir, state_dir):
    """A certificate next to the managed one (the bridge, README "Moving
    in") is shown in the managed entry's "bridge", not as an unmanaged one."""
    ca = _make_ca()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    key, crt, _ = _leaf(workdir, ca, "bridge", ["DNS:a.example.test"], now - DAY, now + 30 * DAY)
    p = pebble_factory(start=False)
    text = server.conf(p, state_dir, names=["a.example.test"])
    if server.kind == "nginx":
        line, own = "acme_certificate pebble", ("ssl_certificate %s;\n        "
                                                "ssl_certificate_key %s;\n        ")
    else:
        line, own = "AcmeCertificate pebble", ("SSLCertificateFile %s\n    "
                                               "SSLCertificateKeyFile %s\n    ")
    i = text.index(line)
    server.raw.write_conf(text[:i] + own % (crt, key) + text[i:])
    server.start()

    doc = server.status()
    assert len(doc["certificates"]) == 1, doc
    c = doc["certificates"][0]
    assert c["managed"] is True and c["bridge"]["file"] == crt, c
    assert c["used_by"] == [_user(server, "a.example.test")], c


@pytest.mark.parametrize("server", ["nginx"], indirect=True)
def test_nginx_http_level_certificate_listed_once(server, pebble_factory, workdir, state_dir):
    """An ssl_certificate of http{} inherited by several TLS servers is one
    entry naming all of them (a server without server_name by its FILE:LINE);
    a server without ssl does not present it."""
    ca = _make_ca()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    key, crt, cert = _leaf(workdir, ca, "inherited", ["DNS:h1.example.test"],
                           now - DAY, now + 30 * DAY)
    more = ["ssl_certificate %s;\n    ssl_certificate_key %s;" % (crt, key)]
    more += ["server { listen 127.0.0.1:%d ssl; server_name %s; }" % (server.https_port, n)
             for n in ("h1.example.test", "h2.example.test")]
    more += ["server { listen 127.0.0.1:%d ssl; } # unnamed" % server.https_port]
    p = pebble_factory(start=False)
    server.raw.write_conf(server.conf(p, state_dir, names=["a.example.test"], more=more))
    server.start()

    doc = server.status()
    assert [c["managed"] for c in doc["certificates"]] == [True, False], doc
    c = doc["certificates"][1]
    unnamed = "%s:%d" % (server.raw.conf_path, server.conf_lines("# unnamed")[0])
    assert c["file"] == crt and c["state"] == "valid", c
    assert c["used_by"] == sorted([unnamed, "h1.example.test", "h2.example.test"]), c
    assert same_serial(c["serial"], cert.serial_number)


def test_inventory_without_managed_certificates(server, workdir):
    """Only certificates from files, no issuer: the status lists them."""
    ca = _make_ca()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    key, crt, cert = _leaf(workdir, ca, "only", ["DNS:only.example.test"],
                           now - DAY, now + 30 * DAY)
    if server.kind == "nginx":
        body = _static(server, "only.example.test", crt, key) + """
    server {
        listen 127.0.0.1:%d;
        server_name a.example.test;
        location = /acme-status { acme_status; }
    }""" % server.http_port
    else:
        body = _static(server, "only.example.test", crt, key) + """
<VirtualHost 127.0.0.1:%d>
    ServerName a.example.test
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>""" % server.http_port
    server.raw.write_conf(body)
    server.start()

    doc = server.status()
    assert doc["acme_pid"] is None
    assert len(doc["certificates"]) == 1, doc
    c = doc["certificates"][0]
    assert c["managed"] is False and c["file"] == crt and c["state"] == "valid", c
    assert c["expiring"] is False, c        # 30 days left of 31: outside 10 %
    # the server-wide warning window applies to files too
    server.stop()
    server.raw.write_conf(("acme_expiry_warning 40d;\n" if server.kind == "nginx"
                           else "AcmeExpiryWarning %d\n" % (40 * 86400)) + body)
    server.start()
    c = server.status()["certificates"][0]
    assert c["expiring"] is True, c
    server.stop()
    server.raw.write_conf(body)
    server.start()
    c = server.status()["certificates"][0]
    assert c["used_by"] == [_user(server, "only.example.test")], c
    assert same_serial(c["serial"], cert.serial_number)

"""nginx: configurations written for the official nginx-acme module behave
the same here (issue 11), one test per difference that was removed."""

import base64
import glob
import json
import os
import re
import stat
import types

from cryptography import x509

import nginx_server
import storeplant
from ca_proxy import CaProxy
import pebble as pebble_mod
from tlsutil import (http_get, load_pem_certs, sans, serial_hex, served_cert,
                     wait_acme_cert, wait_for)


def test_ca_host_resolved_at_run_time_with_default_resolver_timeout(
        nginx_factory, pebble, workdir, state_dir):
    """"resolver" in http{} without "resolver_timeout": the CA's host,
    unknown to /etc/hosts, is resolved by the workers with nginx's default
    timeout (30 s); the unset value used to be taken as is, and every
    lookup timed out at once."""
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    ca = types.SimpleNamespace(
        directory_url="https://%s:%d/dir" % (pebble_mod.CA_RUNTIME_NAME,
                                             pebble_mod.API_PORT),
        ca_pem=pebble.ca_pem)
    srv = nginx_factory()
    nginx_server.start_managed(
        srv, ca, state_dir,
        http_extra="resolver 127.0.0.1:%d ipv6=off;" % pebble_mod.DNS_PORT)
    wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root, 60,
                   proc_alive=srv.running)
    log = srv.error_log()
    assert "Operation timed out" not in log, log


def test_acme_certificate_variables(nginx_factory, pebble, root_file,
                                    state_dir):
    """nginx-acme's "ssl_certificate $acme_certificate;
    ssl_certificate_key $acme_certificate_key;" (before and after
    acme_certificate) is the managed certificate, parsed once (no variable
    certificate loading per handshake); elsewhere the variables are "data:"
    + the PEM of the certificate chain / key, as in nginx-acme."""
    pair = ("ssl_certificate $acme_certificate; "
            "ssl_certificate_key $acme_certificate_key;")
    srv = nginx_factory()
    conf = nginx_server.managed_http_conf(
        pebble, state_dir, names="a.example.test", server_extra=pair + """
        location = /cert { return 200 "$acme_certificate"; }
        location = /key { return 200 "$acme_certificate_key"; }""")
    srv.write_conf(conf.replace(pair, "").replace(
        "acme_certificate pebble", pair + " acme_certificate pebble"))
    rc, out = srv.test_config()
    assert rc == 0, out
    srv.write_conf(conf)
    srv.start(ports=(nginx_server.HTTPS_PORT,))
    leaf = wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test",
                          root_file, 60, proc_alive=srv.running)
    url = "https://127.0.0.1:%d/" % nginx_server.HTTPS_PORT
    status, _, body = http_get(url + "cert", host="a.example.test")
    assert status == 200 and body.startswith(b"data:-----BEGIN CERTIFICATE")
    certs = load_pem_certs(body[5:].decode())
    assert serial_hex(certs[0]) == serial_hex(leaf)
    status, _, body = http_get(url + "key", host="a.example.test")
    assert status == 200 and body.startswith(b"data:-----BEGIN ")
    assert b"PRIVATE KEY-----" in body and b"CERTIFICATE" not in body

    # where nginx-acme keeps it (its tests look there): <state_path>/<name>*.crt,
    # the chain only, readable
    crt = wait_for(lambda: glob.glob(os.path.join(state_dir, "a.example.test*.crt")),
                   20, "the chain copy in the state directory")
    assert len(crt) == 1 and stat.S_IMODE(os.stat(crt[0]).st_mode) == 0o644
    with open(crt[0]) as f:
        copy = f.read()
    assert "PRIVATE KEY" not in copy
    assert serial_hex(load_pem_certs(copy)[0]) == serial_hex(leaf)


def test_leading_dot_server_name(nginx_factory, pebble, root_file, state_dir):
    """"server_name .example.test;" (the name and every name below it)
    orders www.example.test and example.test, as nginx-acme does; it used
    to be refused."""
    srv = nginx_factory()
    nginx_server.start_managed(srv, pebble, state_dir, names=".example.test")
    leaf = wait_acme_cert(nginx_server.HTTPS_PORT, "www.example.test",
                          root_file, 60, proc_alive=srv.running)
    assert sans(leaf) == ["example.test", "www.example.test"]


def test_unversioned_challenge_names(nginx_factory, pebble, root_file,
                                     state_dir):
    """nginx-acme's "challenge http;" and "challenge tls-alpn;" are
    http-01 and tls-alpn-01."""
    srv = nginx_factory()
    srv.write_conf(nginx_server.managed_http_conf(
        pebble, state_dir, issuer_extra="challenge tls-alpn;"))
    rc, out = srv.test_config()
    assert rc == 0, out
    # any case, as Apache's AcmeChallenge (one parser in common/)
    srv.write_conf(nginx_server.managed_http_conf(
        pebble, state_dir, issuer_extra="challenge HTTP-01 TLS-ALPN-01;"))
    rc, out = srv.test_config()
    assert rc == 0, out
    nginx_server.start_managed(srv, pebble, state_dir,
                               issuer_extra="challenge http;")
    wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root_file, 60,
                   proc_alive=srv.running)


def test_common_name_in_csr(nginx_factory, pebble, root_file, state_dir):
    """nginx-acme's "common_name_in_csr on;": the CSR's subject CN is the
    first name (off by default: an empty subject)."""
    proxy = CaProxy(pebble).start()
    try:
        srv = nginx_factory()
        nginx_server.start_managed(srv, proxy, state_dir,
                                   issuer_extra="common_name_in_csr on;")
        wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root_file,
                       60, proc_alive=srv.running)
        bodies = [b for p, b in proxy.bodies if p.startswith("/finalize-order/")]
    finally:
        proxy.stop()
    payload = json.loads(b64url(json.loads(bodies[0])["payload"]))
    csr = x509.load_der_x509_csr(b64url(payload["csr"]))
    cn = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["a.example.test"]


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_ecdsa_521(nginx_factory, pebble, root_file, state_dir):
    """nginx-acme's ecdsa:521: an ES512 account and a P-521 certificate."""
    srv = nginx_factory()
    nginx_server.start_managed(srv, pebble, state_dir,
                               issuer_extra="account_key ecdsa:521;",
                               cert_args="key=ecdsa:521")
    leaf = wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test",
                          root_file, 60, proc_alive=srv.running)
    assert leaf.public_key().curve.name == "secp521r1"


def test_account_key_file(nginx_factory, pebble, root_file, state_dir,
                          workdir):
    """nginx-acme's "account_key FILE": an existing PEM key (root-only
    here: the master reads it) signs the account; it is never rewritten
    and the store gets no account.key of its own."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    path = os.path.join(workdir, "account.pem")
    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with open(path, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    before = os.stat(path)
    srv = nginx_factory()
    nginx_server.start_managed(srv, pebble, state_dir,
                               issuer_extra="account_key %s;" % path)
    wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root_file, 60,
                   proc_alive=srv.running)
    after = os.stat(path)
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns,
                                                before.st_ino)
    with open(path, "rb") as f:
        assert f.read() == pem
    found = [os.path.join(d, n) for d, _, files in os.walk(state_dir)
             for n in files if n == "account.key"]
    assert found == [], found


def test_state_path_off(nginx_factory, pebble, root_file, state_dir):
    """nginx-acme's "state_path off;": nothing on disk (no directory named
    "off", no store anywhere); the account key and the certificate are in
    memory only: a reload keeps the certificate (the zone has it) and the
    account key, a restart orders a new one with a new account."""
    srv = nginx_factory()
    nginx_server.start_managed(srv, pebble, "off", names="a.example.test")
    leaf = wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test",
                          root_file, 60, proc_alive=srv.running)
    assert "keeps nothing on disk" in srv.error_log()

    def nothing_stored():
        for top in (srv.prefix, os.getcwd()):
            assert not os.path.exists(os.path.join(top, "off"))
        found = [os.path.join(d, n) for d, dirs, files in os.walk(srv.prefix)
                 for n in dirs + files
                 if n in ("off", "certs", "account.key", "bundle.pem",
                          "state.json")]
        assert found == [], found
        assert not os.path.exists(state_dir)

    nothing_stored()
    srv.reload()
    assert serial_hex(wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test",
                                     root_file, 10, proc_alive=srv.running)) \
        == serial_hex(leaf)
    # a reload keeps the account key: a certificate added by a reload is
    # ordered with the same account
    srv.write_conf(nginx_server.managed_http_conf(
        pebble, "off", names="a.example.test", http_extra="""
    server {
        listen 127.0.0.1:%d ssl;
        server_name c.example.test;
        acme_certificate pebble;
    }""" % nginx_server.HTTPS_PORT))
    srv.reload()
    wait_acme_cert(nginx_server.HTTPS_PORT, "c.example.test", root_file, 60,
                   proc_alive=srv.running)
    assert serial_hex(served_cert(nginx_server.HTTPS_PORT, "a.example.test",
                                  cafile=root_file)) == serial_hex(leaf)
    srv.stop()
    srv.start(ports=(nginx_server.HTTPS_PORT,))
    again = wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test",
                           root_file, 60, proc_alive=srv.running)
    assert serial_hex(again) != serial_hex(leaf)
    nothing_stored()
    log = srv.error_log()
    accounts = re.findall(r'acme_issuer "pebble": account (\S+)', log)
    assert len(accounts) == 3, accounts
    assert accounts[0] == accounts[1] != accounts[2], accounts
    noisy = [l for l in log.splitlines()
             if "acme" in l and re.search(r"\[(warn|error|crit|alert)\]", l)]
    assert noisy == [], noisy


def test_state_path_relative_to_prefix(nginx_factory, pebble, root_file):
    """A relative state_path is below the nginx prefix (-p), as
    nginx-acme's is, not below the working directory."""
    srv = nginx_factory()
    nginx_server.start_managed(srv, pebble, "acme-rel", names="a.example.test")
    wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root_file, 60,
                   proc_alive=srv.running)
    assert os.path.isdir(os.path.join(srv.prefix, "acme-rel", "certs"))
    assert not os.path.exists(os.path.join(os.getcwd(), "acme-rel"))


def test_same_name_under_two_issuers_sharing_state_path(
        nginx_factory, pebble, root_file, state_dir):
    """nginx-acme's configurations put one name under several issuers (a
    server each) and several issuers in one state_path: both used to be
    refused.  Upgrade: a store of an earlier version holds
    certs/a.example.test_ecdsa-256 (no state.json); the first issuer block
    keeps that id, so its certificate is served and nothing is ordered for
    it, while the second issuer's certificate for the same name is
    "a.example.test_ecdsa-256@second", issued into the same store."""
    cert_dir = storeplant.worker_dir(os.path.join(storeplant.worker_dir(
        os.path.join(storeplant.worker_dir(state_dir), "certs")),
        "a.example.test_ecdsa-256"))
    bundle = os.path.join(cert_dir, "bundle.pem")
    with open(bundle, "w") as f:
        f.write(storeplant.bundle_pem("a.example.test", "stored"))
    os.chmod(bundle, 0o600)
    storeplant.as_worker(bundle)
    before = storeplant.fingerprint(bundle)

    second = nginx_server.HTTPS_PORT + 1
    srv = nginx_factory()
    srv.write_conf(
        nginx_server.issuer_conf(pebble, state_dir)
        + nginx_server.issuer_conf(pebble, state_dir + "/", name="second")
        + """
    server {
        listen 127.0.0.1:%(first)d ssl;
        server_name a.example.test;
        acme_certificate pebble;
    }
    server {
        listen 127.0.0.1:%(second)d ssl;
        server_name a.example.test;
        acme_certificate second;
    }
    server {
        listen 127.0.0.1:%(http)d;
        server_name a.example.test;
        location = /acme-status { acme_status; }
    }
""" % {"first": nginx_server.HTTPS_PORT, "second": second,
       "http": pebble_mod.HTTP_PORT})
    srv.start(ports=(nginx_server.HTTPS_PORT, second))

    leaf = wait_acme_cert(second, "a.example.test", root_file, 60,
                          proc_alive=srv.running)
    assert sans(leaf) == ["a.example.test"]
    own = os.path.join(state_dir, "certs", "a.example.test_ecdsa-256@second",
                       "bundle.pem")
    wait_for(lambda: os.path.exists(own), 20, "the second issuer's bundle")
    assert storeplant.subject_cn(served_cert(nginx_server.HTTPS_PORT,
                                             "a.example.test")) == "stored"
    assert storeplant.fingerprint(bundle) == before

    ids = {c["id"]: c for c in nginx_server.get_status()["certificates"]}
    assert ids["a.example.test_ecdsa-256"]["issuer"] == "pebble"
    assert ids["a.example.test_ecdsa-256@second"]["issuer"] == "second"
    log = srv.error_log()
    assert 'certificate "a.example.test_ecdsa-256@second": starting an order' in log, log
    assert 'certificate "a.example.test_ecdsa-256": starting' not in log, log



def test_same_name_under_two_issuers_with_their_own_state_paths(
        nginx_factory, pebble, root_file, state_dir):
    """nginx-acme's preferred_chain layout: one name under two issuers,
    each with its own state_path and a server on its own port: two
    certificates, each issued and served on its own (the second issuer's
    id "@second", in its own store)."""
    second = nginx_server.HTTPS_PORT + 1
    srv = nginx_factory()
    srv.write_conf(
        nginx_server.issuer_conf(pebble, state_dir)
        + nginx_server.issuer_conf(pebble, state_dir + "-second", name="second")
        + """
    server {
        listen 127.0.0.1:%(first)d ssl;
        server_name a.example.test;
        acme_certificate pebble;
    }
    server {
        listen 127.0.0.1:%(second)d ssl;
        server_name a.example.test;
        acme_certificate second;
    }
    server {
        listen 127.0.0.1:%(http)d;
        server_name a.example.test;
    }
""" % {"first": nginx_server.HTTPS_PORT, "second": second,
       "http": pebble_mod.HTTP_PORT})
    srv.start(ports=(nginx_server.HTTPS_PORT, second))
    one = wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root_file,
                         60, proc_alive=srv.running)
    two = wait_acme_cert(second, "a.example.test", root_file, 60,
                         proc_alive=srv.running)
    assert serial_hex(one) != serial_hex(two)
    assert os.path.isdir(os.path.join(state_dir, "certs",
                                      "a.example.test_ecdsa-256"))
    assert os.path.isdir(os.path.join(state_dir + "-second", "certs",
                                      "a.example.test_ecdsa-256@second"))

def test_ca_verification_failure_is_a_warn_naming_the_issuer(
        nginx_factory, pebble, root_file, workdir, state_dir):
    """A CA whose TLS certificate fails verification: besides the order's
    error, a [warn] line in nginx-acme's wording ("upstream SSL
    certificate ...", the issuer named), which nginx-acme's tests look
    for: a CA certificate not signed by the trusted one (issuer "badca")
    and one that does not name the host (issuer "badname")."""
    srv = nginx_factory()
    badca = nginx_server.issuer_conf(pebble, state_dir + "-badca", name="badca")
    badca = badca.replace(pebble.ca_pem, root_file)
    badname = nginx_server.issuer_conf(pebble, state_dir + "-badname",
                                       name="badname")
    badname = badname.replace(pebble.directory_url, "https://wrong.pebble.test:%d/dir"
                              % pebble_mod.API_PORT)
    srv.write_conf(badca + badname + """
    resolver 127.0.0.1:%(dns)d ipv6=off;
    server {
        listen 127.0.0.1:%(https)d ssl;
        server_name a.example.test;
        acme_certificate badca;
    }
    server {
        listen 127.0.0.1:%(https)d ssl;
        server_name b.example.test;
        acme_certificate badname;
    }
""" % {"dns": pebble_mod.DNS_PORT, "https": nginx_server.HTTPS_PORT})
    srv.start(ports=(nginx_server.HTTPS_PORT,))

    def warned():
        lines = [l for l in srv.error_log().splitlines()
                 if "[warn]" in l and "upstream SSL certificate" in l]
        return (any('"badca"' in l and "verify error" in l for l in lines)
                and any('"badname"' in l and "does not match" in l
                        for l in lines))
    wait_for(warned, 60, "the [warn] lines naming both issuers")
    log = srv.error_log()
    # ours stays: the order's error says why
    assert re.search(r'\[error\].*"a\.example\.test_ecdsa-256": order failed: '
                     r'.*SSL certificate verify error', log), log



def test_ca_host_looked_up_at_run_time_without_resolver(
        nginx_factory, pebble, root_file, workdir, state_dir):
    """No "resolver" in http{} (nginx-acme refuses that): the workers look
    the CA's host up when they need it by the system's lookup
    (getaddrinfo in nginx's thread pool).  The name is unknown when nginx
    starts (the master cannot resolve it, the first order fails) and is
    added to /etc/hosts afterwards (a copy bind-mounted over it in nginx's
    own mount namespace): a later attempt finds it, no reload needed."""
    hosts = os.path.join(workdir, "hosts")
    with open("/etc/hosts") as f:
        text = f.read()
    assert pebble_mod.CA_RUNTIME_NAME not in text
    with open(hosts, "w") as f:
        f.write(text)
    ca = types.SimpleNamespace(
        directory_url="https://%s:%d/dir" % (pebble_mod.CA_RUNTIME_NAME,
                                             pebble_mod.API_PORT),
        ca_pem=pebble.ca_pem)
    srv = nginx_factory()
    cmd = srv.cmd
    srv.cmd = lambda *args: [
        "unshare", "-m", "--propagation", "private", "--", "sh", "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"', hosts] + cmd(*args)
    nginx_server.start_managed(srv, ca, state_dir,
                               issuer_extra="retry_delay 1s;")
    wait_for(lambda: "could not be resolved" in srv.error_log(), 30,
             "the failed lookup")
    with open(hosts, "a") as f:
        f.write("127.0.0.1 %s\n" % pebble_mod.CA_RUNTIME_NAME)
    wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root_file, 60,
                   proc_alive=srv.running)

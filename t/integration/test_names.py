"""Certificate names (common/core/acme_names.c, docs/design.md "Certificate
names"), one contract on nginx and Apache: names are normalised (case, a
trailing dot) and deduplicated, nginx's "_" placeholder is skipped, what
cannot be certified is a configuration-test error naming the name and
file:line, and names a wildcard of the same set covers are served but not
ordered."""

import os
import re

import pytest

import apache_server
import nginx_server
from apache_server import apache_factory  # noqa: F401 (fixture)
from bind9 import Bind9
from pebble import HTTP_PORT
from serverlib import status_cert
from tlsutil import is_self_signed, sans, wait_acme_cert, wait_for

ISSUE_TIMEOUT = 90
LONG_LABEL = "a" * 64 + ".example.test"
NON_ASCII = "b\u00fccher.example.test"

class Names:
    """One server kind with a managed certificate whose names are given as
    nginx's server_name words, or Apache's ServerName + ServerAlias."""

    def __init__(self, kind, nginx_factory, apache_factory, pebble, state_dir):
        self.kind = kind
        self.pebble = pebble
        self.state_dir = state_dir
        self.srv = nginx_factory() if kind == "nginx" else apache_factory()

    def write(self, names, issuer_extra="", other_names=None):
        """other_names: a second managed server/vhost on the same port."""
        if self.kind == "nginx":
            other = ""
            if other_names:
                other = ("server { listen 127.0.0.1:%d ssl; server_name %s; "
                         "acme_certificate pebble; }"
                         % (nginx_server.HTTPS_PORT, " ".join(other_names)))
            self.srv.write_conf(nginx_server.managed_http_conf(
                self.pebble, self.state_dir, names=" ".join(names),
                issuer_extra=issuer_extra, http_extra=other))
        else:
            other = ""
            if other_names:
                other = ("\n<VirtualHost 127.0.0.1:%d>\n    ServerName %s\n"
                         "    ServerAlias %s\n    SSLEngine on\n"
                         "    AcmeCertificate pebble\n</VirtualHost>\n"
                         % (apache_server.HTTPS_PORT, other_names[0],
                            " ".join(other_names[1:])))
            self.srv.write_conf(apache_server.managed_conf(
                self.pebble, self.state_dir, names=names,
                issuer_extra=issuer_extra) + other)

    def start(self):
        if self.kind == "nginx":
            return self.srv.start(ports=(nginx_server.HTTPS_PORT, HTTP_PORT))
        return self.srv.start()

    @property
    def https_port(self):
        return nginx_server.HTTPS_PORT if self.kind == "nginx" else apache_server.HTTPS_PORT

    def status(self):
        mod = nginx_server if self.kind == "nginx" else apache_server
        return status_cert(mod.get_status())

    def directive_line(self):
        """The line a name error is reported at: nginx's acme_certificate
        (server_name keeps no line), Apache's AcmeCertificate."""
        return self.srv.conf_line("acme_certificate" if self.kind == "nginx"
                                  else "AcmeCertificate")

    def issuer_dns(self, bind, key_file):
        if self.kind == "nginx":
            return ("challenge dns-01;\ndns_update 127.0.0.1:%d key=acme-key secret=%s;"
                    % (bind.port, key_file))
        return ("    AcmeChallenge dns-01\n"
                "    AcmeDNSUpdate 127.0.0.1:%d acme-key file:%s hmac-sha256\n"
                % (bind.port, key_file))


@pytest.fixture(params=["nginx", "apache"])
def names_env(request, nginx_factory, apache_factory, pebble_factory,  # noqa: F811
              state_dir):
    def make(pebble=None):
        p = pebble or pebble_factory(start=False)
        return Names(request.param, nginx_factory, apache_factory, p, state_dir)
    return make


def _issued(env, snis, root, expect_sans):
    """The certificate served for each of snis, verifying against root (so
    not the placeholder), with exactly expect_sans."""
    cert = None
    for sni in snis:
        cert = wait_acme_cert(env.https_port, sni, root, ISSUE_TIMEOUT,
                              proc_alive=env.srv.running)
        assert not is_self_signed(cert)
        assert sorted(sans(cert)) == sorted(expect_sans), (sni, sans(cert))
    return cert


def test_names_normalised_one_certificate(names_env, pebble, root_file):
    """A trailing dot, upper case, a duplicate and (nginx) the "_"
    placeholder: one certificate for the two names, served for both; a
    second server with the same names in another order shares it."""
    env = names_env(pebble)
    if env.kind == "nginx":
        names = ["_", "a.example.test.", "B.example.test", "b.example.test."]
    else:
        names = ["a.example.test.", "b.example.test.", "B.Example.Test", "A.EXAMPLE.TEST"]
    env.write(names, other_names=["B.example.test", "a.example.test."])
    rc, out = env.srv.test_config()
    assert rc == 0, out
    env.start()

    _issued(env, ["a.example.test", "b.example.test"], root_file,
            ["a.example.test", "b.example.test"])
    # status_cert: exactly one certificate for both servers
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(env.status()),
                 20, "state valid")
    assert sorted(c["names"]) == ["a.example.test", "b.example.test"], c
    # the id derives from the normalised first name of the server that
    # comes first (either server's: the servers' order differs by kind)
    assert c["id"].split("_")[0] in ("a.example.test", "b.example.test"), c
    assert os.listdir(os.path.join(env.state_dir, "certs")) == [c["id"]]


CONFIG_ERRORS = {
    # case: (names, words in the message besides the name)
    "long_label": ([LONG_LABEL], ["longer than 63 octets"]),
    "non_ascii": (["a.example.test", NON_ASCII], ["xn--"]),
    "wildcard_http01": (["example.test", "*.example.test"], ["dns-01"]),
    "ip_trailing_dot": (["a.example.test", "127.0.0.1."], ["all-numeric"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_names_config_error(case, names_env):
    names, words = CONFIG_ERRORS[case]
    env = names_env()
    env.write(names)
    rc, out = env.srv.test_config()
    assert rc != 0, out
    bad = names[-1]
    if env.kind == "apache":
        # Apache's error log escapes non-ASCII octets as \xNN
        bad = bad.encode().decode("ascii", "backslashreplace")
    assert ('"%s"' % bad if env.kind == "nginx" else "'%s'" % bad) in out, out
    for w in words:
        assert w in out, (w, out)
    where = ("in %s:%d" if env.kind == "nginx" else "(%s:%d)") % (
        env.srv.conf_path, env.directive_line())
    assert where in out, (where, out)
    if env.kind == "nginx":
        assert "[emerg]" in out and "server name" in out, out
    else:
        assert "ServerName/ServerAlias" in out, out


def test_names_only_placeholders_is_an_error(nginx_factory, pebble_factory, state_dir):
    """nginx only: Apache has no server name placeholders."""
    env = Names("nginx", nginx_factory, None, pebble_factory(start=False), state_dir)
    env.write(["_", '""'])
    rc, out = env.srv.test_config()
    assert rc != 0 and "no usable names" in out, out


@pytest.fixture
def bind(workdir):
    b = Bind9(workdir)
    b.start()
    yield b
    b.stop()


def test_names_wildcard_covers_name(names_env, pebble_factory, bind, workdir):
    """*.example.test, example.test and www.example.test with dns-01: the
    order (so the certificate) has the first two only, and a handshake for
    www.example.test gets that certificate."""
    pebble = pebble_factory(dns_server="127.0.0.1:%d" % bind.port)
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    key_file = os.path.join(workdir, "acme-key.conf")
    with open(key_file, "w") as f:
        f.write(bind.key_text)
    os.chmod(key_file, 0o600)
    env = names_env(pebble)
    env.write(["example.test", "*.example.test", "www.example.test"],
              issuer_extra=env.issuer_dns(bind, key_file))
    env.start()

    _issued(env, ["www.example.test", "example.test"], root,
            ["*.example.test", "example.test"])
    c = wait_for(lambda: (lambda c: c if c["state"] == "valid" else None)(env.status()),
                 20, "state valid")
    assert sorted(c["names"]) == ["*.example.test", "example.test"], c
    assert c["challenge"] == "dns-01" and not c["last_error"], c
    log = env.srv.error_log()
    assert not re.search(r"www\.example\.test.*(redundant|rejected)", log), log[-3000:]

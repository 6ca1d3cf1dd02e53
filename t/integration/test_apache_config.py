"""Apache (mod_acme_auto): "apache2 -t" (what apachectl configtest runs)
catches configuration mistakes with clear messages and writes nothing."""

import os
import re

import pytest

from apache_server import apache_factory, managed_conf  # noqa: F401 (fixture)
from pebble import Pebble


def _conf(pebble, state_dir, **kw):
    return managed_conf(pebble, state_dir, **kw)


CASES = [
    # (id, edit of the valid configuration, expected words in the message)
    ("unknown-issuer",
     lambda t: t.replace("AcmeCertificate pebble", "AcmeCertificate nope"),
     ["no <AcmeIssuer nope>"]),
    ("no-directory",
     lambda t: "\n".join(l for l in t.splitlines() if "AcmeDirectory" not in l),
     ["<AcmeIssuer pebble>", "has no AcmeDirectory"]),
    ("bad-key-type",
     lambda t: t.replace("AcmeCertificate pebble", "AcmeCertificate pebble key=dsa:1024"),
     ["unknown key type 'dsa:1024'"]),
    ("directory-outside-issuer",
     lambda t: t + "\nAcmeDirectory https://127.0.0.1:14000/dir\n",
     ["AcmeDirectory is only valid inside <AcmeIssuer name>"]),
    ("wildcard-alias",
     lambda t: t.replace("ServerAlias b.example.test", "ServerAlias *.example.test"),
     ["'*.example.test'", "dns-01"]),
    ("terms-not-agreed-word",
     lambda t: t.replace("AcmeTermsOfService agreed", "AcmeTermsOfService yes"),
     ["AcmeTermsOfService", "'agreed'"]),
    ("renew-percent",
     lambda t: t.replace("</AcmeIssuer>", "    AcmeRenewBeforeExpiry 150%\n</AcmeIssuer>"),
     ["AcmeRenewBeforeExpiry", "'150%'"]),
    ("state-dir-unwritable",
     lambda t: re.sub(r"AcmeStateDir .*", "AcmeStateDir /etc/hostname/acme", t),
     ["AcmeStateDir /etc/hostname/acme cannot be created or written"]),
    ("duplicate-issuer",
     lambda t: t.replace("<VirtualHost", "<AcmeIssuer pebble>\n    AcmeDirectory "
                         "https://x.test/dir\n</AcmeIssuer>\n<VirtualHost", 1),
     ["<AcmeIssuer pebble> is defined twice"]),
    ("trusted-ca-missing",
     lambda t: re.sub(r"AcmeTrustedCA .*", "AcmeTrustedCA /nonexistent/ca.pem", t),
     ["AcmeTrustedCA: '/nonexistent/ca.pem' is not a readable file"]),
    ("certificate-twice",
     lambda t: t.replace("    SSLEngine on", "    SSLEngine on\n    AcmeCertificate pebble", 1),
     ["AcmeCertificate is given twice"]),
    ("certificate-in-location",
     lambda t: t.replace("SetHandler acme-status", "SetHandler acme-status\n"
                         "        AcmeCertificate pebble", 1),
     ["AcmeCertificate", "not allowed"]),
]


@pytest.fixture
def cfg_pebble(workdir):
    """A prepared (not started) pebble: only its URLs and CA file are needed."""
    p = Pebble(workdir)
    p.prepare()
    return p


def test_valid_config_syntax_ok_and_writes_nothing(apache_factory, cfg_pebble, state_dir):
    srv = apache_factory()
    srv.write_conf(_conf(cfg_pebble, state_dir))
    rc, out = srv.test_config()
    assert rc == 0, out
    assert "Syntax OK" in out
    rc, out = srv.apachectl_configtest()
    assert rc == 0 and "Syntax OK" in out, out
    assert not os.path.exists(os.path.dirname(state_dir)), "apache2 -t created the state dir"


def test_apachectl_configtest_reports_errors(apache_factory, cfg_pebble, state_dir):
    srv = apache_factory()
    srv.write_conf(_conf(cfg_pebble, state_dir).replace("AcmeCertificate pebble",
                                                        "AcmeCertificate nope"))
    rc, out = srv.apachectl_configtest()
    assert rc != 0, out
    assert "no <AcmeIssuer nope>" in out
    assert not os.path.exists(os.path.dirname(state_dir))


@pytest.mark.parametrize("case_id,edit,words", CASES, ids=[c[0] for c in CASES])
def test_config_errors(case_id, edit, words, apache_factory, cfg_pebble, state_dir):
    srv = apache_factory()
    text = edit(_conf(cfg_pebble, state_dir))
    srv.write_conf(text)
    rc, out = srv.test_config()
    assert rc != 0, "apache2 -t accepted it:\n" + out
    for w in words:
        assert w in out, "%r not in:\n%s" % (w, out)
    assert "Syntax OK" not in out
    assert not os.path.exists(os.path.dirname(state_dir)), "apache2 -t created the state dir"


def test_explicit_name_not_served_by_vhost_is_a_warning(apache_factory, cfg_pebble, state_dir):
    srv = apache_factory()
    srv.write_conf(_conf(cfg_pebble, state_dir, cert_args="a.example.test zz.example.test"))
    rc, out = srv.test_config()
    assert rc == 0, out
    assert "'zz.example.test' is not a ServerName/ServerAlias of this vhost" in out
    assert "Syntax OK" in out


def test_symlinked_state_dir_is_a_config_error(apache_factory, cfg_pebble, workdir, state_dir):
    """The store is opened without following a symlink (root must not be
    redirected by one): apache2 -t says so, naming the issuer's place."""
    real = os.path.join(workdir, "realstore")
    link = os.path.join(workdir, "linkstore")
    os.mkdir(real)
    os.symlink(real, link)
    srv = apache_factory()
    srv.write_conf(re.sub(r"AcmeStateDir .*", "AcmeStateDir " + link,
                          _conf(cfg_pebble, state_dir)))
    rc, out = srv.test_config()
    assert rc != 0, "apache2 -t accepted it:\n" + out
    assert "AcmeStateDir %s cannot be created or written" % link in out, out
    assert "symbolic link" in out, out
    assert re.search(r"<AcmeIssuer pebble> \(%s:\d+\)" % re.escape(srv.conf_path), out), out
    assert os.listdir(real) == []


def test_plain_http_directory_is_warned_about(apache_factory, cfg_pebble, state_dir):
    srv = apache_factory()
    srv.write_conf(_conf(cfg_pebble, state_dir).replace("AcmeDirectory https://",
                                                        "AcmeDirectory http://"))
    rc, out = srv.test_config()
    assert rc == 0, out
    assert re.search(r"AcmeDirectory http://\S+ \(%s:\d+\) is plain HTTP"
                     % re.escape(srv.conf_path), out), out

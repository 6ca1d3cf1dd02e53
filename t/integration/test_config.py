"""nginx -t and apache2 -t (what apachectl configtest runs): configuration
mistakes are errors that name the directive and file:line, doubtful but
usable settings are warnings naming the line, and testing a configuration
writes nothing (no state directory, no file anywhere outside the server's
own directory)."""

import os
import re
import shutil
from types import SimpleNamespace

import pytest

from nginx_server import make_world_traversable_tmpdir
from pebble import Pebble
from servers import SERVERS


@pytest.fixture(scope="module")
def cfg_pebble():
    """A prepared, never started pebble, shared by the module: the tests
    need only its directory URL and CA file (nothing is contacted)."""
    d = make_world_traversable_tmpdir()
    p = Pebble(d)
    p.prepare()
    yield p
    shutil.rmtree(d, ignore_errors=True)


def _reported_lines(out, conf):
    """Line numbers of conf in out: nginx "in conf:N", Apache "(conf:N)"
    or "Syntax error on line N of conf"."""
    c = re.escape(conf)
    return [int(n) for n in re.findall(c + r":(\d+)", out)
            + re.findall(r"line (\d+) of " + c, out)]


def _snapshot(root, skip):
    """Every path under root except the server's own dir skip (nginx -t
    opens its logs and creates its temp dirs there)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [n for n in dirs if os.path.join(d, n) != skip]
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def _cert_line(s):
    return s.conf_line(s.cert_directive + " ")


def _issuer_block(s):
    return s.block_of(s.conf_line("AcmeIssuer pebble" if s.kind == "apache"
                                  else "acme_issuer pebble"))


def _server_block(s):
    return s.block_of(_cert_line(s))


def _second_issuer(s):
    return s.block_of(s.conf_lines("AcmeIssuer pebble" if s.kind == "apache"
                                   else "acme_issuer pebble")[1])


# a second issuer "pebble" (nothing is contacted)
OTHER_CA = SimpleNamespace(directory_url="https://x.test/dir", ca_pem="/dev/null")


def _shared_state(s, t):
    """A copy of the issuer block named "other", with the same state
    directory (written with a trailing "/")."""
    block = re.search(r"(?s)<AcmeIssuer pebble>.*?</AcmeIssuer>|acme_issuer pebble \{.*?\}",
                      t).group(0)
    block = re.sub(r"(?m)^(\s*(?:state_path|AcmeStateDir) \S+?)(;?)$", r"\1/\2", block)
    return t + "\n" + block.replace("acme_issuer pebble", "acme_issuer other").replace(
        "<AcmeIssuer pebble>", "<AcmeIssuer other>") + "\n"


def _wrong_issuer(s, t):
    return t.replace(s.cert_directive + " pebble", s.cert_directive + " nosuch")


def _repeat_cert(s, t):
    """A second line after the first acme_certificate / AcmeCertificate,
    for the same names in another order."""
    first = "%s pebble a.example.test b.example.test" % s.cert_directive
    second = "%s pebble b.example.test a.example.test%s" % (
        s.cert_directive, ";" if s.kind == "nginx" else "")
    i = t.index(first)
    eol = t.index("\n", i)
    return t[:eol + 1] + "    " + second + "\n" + t[eol + 1:]


# case -> {server kind: how the valid configuration is made wrong, what the
# message must say and where}; a kind missing from a case: that server has
# no such mistake (see the server-only cases below the table).
#   conf   keyword arguments of server.conf() (state_dir: a key of the
#          paths the test makes, "afile", "afile/state", "alink"), or f(server) -> them
#   edit   f(server, text) -> text
#   words  each must be in the output; a tuple: one of them
#   where  f(server) -> (first, last): a reported line must be in it
CASES = {
    "unknown_issuer": {
        "nginx": dict(edit=_wrong_issuer, words=[("acme_certificate",)],
                      where=lambda s: (_cert_line(s),) * 2),
        "apache": dict(edit=_wrong_issuer, words=["no <AcmeIssuer nosuch>"],
                       where=lambda s: (_cert_line(s),) * 2),
    },
    "missing_uri": {
        kind: dict(edit=lambda s, t: s.edit_issuer_opt(t, "uri"), words=words,
                   where=_issuer_block)
        for kind, words in (("nginx", [("uri",)]),
                            ("apache", ["<AcmeIssuer pebble>", "has no AcmeDirectory"]))
    },
    "bad_key_spec": {
        kind: dict(conf=dict(cert_args="key=dsa:1024"), words=words,
                   where=lambda s: (_cert_line(s),) * 2)
        for kind, words in (("nginx", [("acme_certificate",)]),
                            ("apache", ["unknown key type 'dsa:1024'"]))
    },
    "bad_rsa_size": {
        kind: dict(conf=dict(cert_args="key=rsa:1024"), words=words,
                   where=lambda s: (_cert_line(s),) * 2)
        for kind, words in (("nginx", [("acme_certificate",)]),
                            ("apache", ["unknown key type 'rsa:1024'"]))
    },
    "unwritable_state_path": {
        kind: dict(conf=dict(state_dir="afile/state"), words=words, where=_issuer_block)
        for kind, words in (("nginx", [("state_path",)]),
                            ("apache", ["AcmeStateDir @afile/state@ cannot be created "
                                        "or written"]))
    },
    # a regular file as the store: refused at start (its certificates
    # ordered again), so said at -t already
    "state_path_is_a_file": {
        kind: dict(conf=dict(state_dir="afile"), words=words, where=_issuer_block)
        for kind, words in (("nginx", [("state_path",), "is not a directory"]),
                            ("apache", ["AcmeStateDir @afile@ cannot be created or written",
                                        "is not a directory"]))
    },
    # the store is opened without following a symlink: said at -t already
    "symlinked_state_path": {
        kind: dict(conf=dict(state_dir="alink"), words=words, where=_issuer_block)
        for kind, words in (("nginx", [("state_path",), "symbolic link"]),
                            ("apache", ["AcmeStateDir @alink@ cannot be created or written",
                                        "symbolic link", "<AcmeIssuer pebble> (@conf@:"]))
    },
    "wildcard_without_dns01": {
        kind: dict(conf=dict(names=("a.example.test", "*.example.test")), words=words,
                   where=_server_block)
        for kind, words in (("nginx", [("acme_certificate", "server_name")]),
                            ("apache", ["'*.example.test'", "dns-01"]))
    },
    # a name pattern that is no host name: nginx's regex, Apache's "?"
    "pattern_server_name": {
        "nginx": dict(conf=dict(names=(r"~^a\.example\.test$",)),
                      words=[("acme_certificate", "server_name")], where=_server_block),
        "apache": dict(conf=dict(names=("a.example.test", "a?.example.test")),
                       words=["'a?.example.test'", "cannot be certified"],
                       where=_server_block),
    },
    "renew_percent": {
        kind: dict(conf=dict(issuer={"renew_before_expiry": "150%"}), words=words,
                   where=lambda s: (s.conf_line("150%"),) * 2)
        for kind, words in (("nginx", ["renew_before_expiry", "150%"]),
                            ("apache", ["AcmeRenewBeforeExpiry", "'150%'"]))
    },
    # one challenge line per issuer block (several types go on that line,
    # tried in turn); the second line is refused, naming its line
    "challenge_twice": {
        kind: dict(conf=dict(issuer=[{"challenge": "http-01"},
                                     {"challenge": "tls-alpn-01"}]),
                   words=words, where=lambda s: (s.conf_lines("tls-alpn-01")[-1],) * 2)
        for kind, words in (("nginx", ['"challenge" directive is duplicate']),
                            ("apache", ["AcmeChallenge is given twice in this <AcmeIssuer>"]))
    },
    # nginx-acme's preferred_chain: one per issuer block
    "preferred_chain_twice": {
        kind: dict(conf=dict(issuer=[{"preferred_chain": '"Root A"'},
                                     {"preferred_chain": '"Root B"'}]),
                   words=words, where=lambda s: (s.conf_line("Root B"),) * 2)
        for kind, words in (("nginx", ['"preferred_chain" directive is duplicate']),
                            ("apache", ["AcmePreferredChain is given twice in this "
                                        "<AcmeIssuer>"]))
    },
    # nginx-acme's profile NAME [require]: one per issuer block, "require"
    # the only parameter
    "profile_twice": {
        kind: dict(conf=dict(issuer=[{"profile": "classic"},
                                     {"profile": "shortlived"}]),
                   words=words, where=lambda s: (s.conf_line("shortlived"),) * 2)
        for kind, words in (("nginx", ['"profile" directive is duplicate']),
                            ("apache", ["AcmeProfile is given twice in this "
                                        "<AcmeIssuer>"]))
    },
    "profile_bad_parameter": {
        kind: dict(conf=dict(issuer={"profile": "shortlived required"}),
                   words=words, where=lambda s: (s.conf_line("required"),) * 2)
        for kind, words in (("nginx", ['invalid parameter "required" of "profile"']),
                            ("apache", ["AcmeProfile: invalid parameter 'required'"]))
    },
    "profile_bad_name": {
        kind: dict(conf=dict(issuer={"profile": '"short lived"'}),
                   words=words, where=lambda s: (s.conf_line("short lived"),) * 2)
        for kind, words in (("nginx", ['"profile": the profile name "short lived" has a '
                                       'character other than printable ASCII']),
                            ("apache", ['AcmeProfile: the profile name "short lived" has '
                                        'a character other than printable ASCII']))
    },
    # proxy / AcmeProxy: an http:// URL with a port, once per issuer block;
    # the message never repeats the URL (it may hold a password)
    "proxy_https": {
        kind: dict(conf=dict(issuer={"proxy": "https://u:pw-secret@127.0.0.1:3128"}),
                   words=words, absent=["pw-secret"],
                   where=lambda s: (s.conf_line("pw-secret"),) * 2)
        for kind, words in (("nginx", ['"proxy": the URL must start with http://']),
                            ("apache", ["AcmeProxy: the URL must start with http://"]))
    },
    "proxy_no_port": {
        kind: dict(conf=dict(issuer={"proxy": "http://u:pw-secret@127.0.0.1"}),
                   words=words, absent=["pw-secret"],
                   where=lambda s: (s.conf_line("pw-secret"),) * 2)
        for kind, words in (("nginx", ['"proxy": the URL has no port']),
                            ("apache", ["AcmeProxy: the URL has no port"]))
    },
    "proxy_twice": {
        kind: dict(conf=dict(issuer=[{"proxy": "http://127.0.0.1:3128"},
                                     {"proxy": "off"}]),
                   words=words, where=lambda s: (s.conf_line("oxy off"),) * 2)
        for kind, words in (("nginx", ['"proxy" directive is duplicate']),
                            ("apache", ["AcmeProxy is given twice in this "
                                        "<AcmeIssuer>"]))
    },
    # key_rollover pinned and key_reuse on exclude each other: the later one
    # is named, with the other
    "key_reuse_and_rollover": {
        kind: dict(conf=dict(issuer=[{"key_reuse": "on"},
                                     {"key_rollover": "pinned"}]),
                   words=words, where=lambda s: (s.conf_line("pinned"),) * 2)
        for kind, words in (("nginx", ['"key_rollover" directive pinned excludes '
                                       '"key_reuse on"']),
                            ("apache", ["AcmeKeyRollover pinned excludes AcmeKeyReuse "
                                        "on"]))
    },
    "key_rollover_bad_value": {
        kind: dict(conf=dict(issuer={"key_rollover": "always"}),
                   words=words, where=lambda s: (s.conf_line("always"),) * 2)
        for kind, words in (("nginx", ['invalid value "always" in "key_rollover": '
                                       'pinned or off']),
                            ("apache", ['AcmeKeyRollover: "always" is neither pinned '
                                        'nor off']))
    },
    "duplicate_issuer": {
        kind: dict(edit=lambda s, t: t + s.issuer_block(OTHER_CA, "/nonexistent"),
                   words=words, where=_second_issuer)
        for kind, words in (("nginx", ['duplicate acme_issuer "pebble"']),
                            ("apache", ["<AcmeIssuer pebble> is defined twice"]))
    },
    # two issuer blocks, one state directory (the rule of acme_issuer.h):
    # both blocks named with file:line; Apache only (nginx shares it, as
    # nginx-acme does: test_compat.py)
    "shared_state_dir": {
        "apache": dict(edit=_shared_state,
                       words=["<AcmeIssuer pebble> (@conf@:",
                              "<AcmeIssuer other> (@conf@:",
                              "share the AcmeStateDir"],
                       where=lambda s: s.block_of(s.conf_line("AcmeIssuer other")))
    },
    # the dns-01 hook's and propagation check's timeouts: 1s to 3600s on
    # both servers (acme_dns_conf_timeout)
    "dns_hook_timeout": {
        kind: dict(conf=lambda s: dict(issuer=s.dns_hook("/bin/true", "7200s")),
                   words=[directive, "must be between 1s and 3600s"],
                   where=lambda s: (s.conf_line("7200s"),) * 2)
        for kind, directive in (("nginx", '"dns_hook"'), ("apache", "AcmeDNSHook"))
    },
    "dns_check_timeout": {
        kind: dict(conf=lambda s: dict(issuer=s.dns_propagation_check(["127.0.0.1"],
                                                                      "500ms")),
                   words=[directive, "must be between 1s and 3600s"],
                   where=lambda s: (s.conf_line("500ms"),) * 2)
        for kind, directive in (("nginx", '"dns_propagation_check"'),
                                ("apache", "AcmeDNSPropagationCheck"))
    },
    "trusted_ca_missing": {
        kind: dict(edit=lambda s, t: s.edit_issuer_opt(t, "ssl_trusted_certificate",
                                                       "/nonexistent/ca.pem"),
                   words=words, where=lambda s: (s.conf_line("/nonexistent/ca.pem"),) * 2)
        for kind, words in (("nginx", ["ssl_trusted_certificate", "/nonexistent/ca.pem"]),
                            ("apache", ["AcmeTrustedCA: '/nonexistent/ca.pem' is not a "
                                        "readable file"]))
    },
    # nginx only: Apache accepts AcmeCertificate in a vhost without
    # "SSLEngine on" with a warning (test_no_ssl_engine_is_warned_about)
    "no_listen_ssl": {
        "nginx": dict(edit=lambda s, t: t.replace("listen 127.0.0.1:%d ssl;" % s.https_port,
                                                  "listen 127.0.0.1:%d;" % s.https_port, 1),
                      words=[("acme_certificate", "listen")], where=_server_block),
    },
    # nginx only: Apache has no empty server name placeholder
    "no_names": {
        "nginx": dict(conf=dict(names=('""',)), words=[("acme_certificate", "server_name")],
                      where=_server_block),
    },
    # Apache only: nginx's own parser refuses a directive outside its block
    "directory_outside_issuer": {
        "apache": dict(edit=lambda s, t: t + "\nAcmeDirectory https://127.0.0.1:14000/dir\n",
                       words=["AcmeDirectory is only valid inside <AcmeIssuer name>"],
                       where=lambda s: (s.conf_lines("AcmeDirectory")[-1],) * 2),
    },
    # Apache only: nginx's accept_terms_of_service takes no argument
    "terms_not_agreed_word": {
        "apache": dict(edit=lambda s, t: t.replace("AcmeTermsOfService agreed",
                                                   "AcmeTermsOfService yes"),
                       words=["AcmeTermsOfService", "'agreed'"],
                       where=lambda s: (s.conf_line("AcmeTermsOfService"),) * 2),
    },
    # the same certificate twice in one server / vhost (same issuer, key
    # type and names: the names of the first line in another order); the
    # message names the earlier line
    "certificate_twice": {
        kind: dict(conf=dict(cert_args="a.example.test b.example.test"),
                   edit=lambda s, t: _repeat_cert(s, t), words=words,
                   where=lambda s: (s.conf_line("b.example.test a.example.test"),) * 2)
        for kind, words in (("nginx", ['"acme_certificate" repeats the one in @conf@:']),
                            ("apache", ["AcmeCertificate is given twice",
                                        "first in @conf@:"]))
    },
    # one issuer, first name and key type (one certificate) in two servers
    # with other names: the message names the other line too
    "same_first_name_other_names": {
        kind: dict(conf=lambda s: dict(more=(s.vhost(("a.example.test",)),)), words=words,
                   where=_server_block)
        for kind, words in (("nginx", ['"a.example.test_ecdsa-256" is managed by the '
                                       '"acme_certificate" in @conf@:', "with other names "
                                       "or challenges: list the same ones"]),
                            ("apache", ["the AcmeCertificate at @conf@:",
                                        "manages 'a.example.test_ecdsa-256' with the same key "
                                        "type but other names"]))
    },
    # Apache only: nginx's own parser refuses acme_certificate in http{}
    "certificate_in_server_config": {
        "apache": dict(edit=lambda s, t: t + "\nAcmeCertificate pebble\n",
                       words=["AcmeCertificate belongs in a <VirtualHost>, not in the "
                              "server config"],
                       where=lambda s: (s.conf_lines("AcmeCertificate pebble")[-1],) * 2),
    },
    # Apache only: nginx's own parser refuses acme_certificate in a location
    "certificate_in_location": {
        "apache": dict(edit=lambda s, t: t.replace("SetHandler acme-status",
                                                   "SetHandler acme-status\n"
                                                   "        AcmeCertificate pebble", 1),
                       words=["AcmeCertificate", "not allowed"],
                       where=lambda s: (s.conf_lines("AcmeCertificate pebble")[1],) * 2),
    },
}

CASE_PARAMS = [(kind, case) for case in CASES for kind in SERVERS if kind in CASES[case]]


@pytest.fixture
def paths(workdir):
    """A regular file, a symlink to an (empty) directory: bad store places."""
    afile = os.path.join(workdir, "afile")
    with open(afile, "w") as f:
        f.write("a regular file, not a directory\n")
    os.mkdir(os.path.join(workdir, "areal"))
    alink = os.path.join(workdir, "alink")
    os.symlink(os.path.join(workdir, "areal"), alink)
    return {"afile": afile, "afile/state": os.path.join(afile, "state"), "alink": alink}


@pytest.mark.parametrize("server,case", CASE_PARAMS, indirect=["server"],
                         ids=["%s-%s" % p for p in CASE_PARAMS])
def test_config_error(server, case, cfg_pebble, workdir, state_dir, paths):
    spec = CASES[case][server.kind]
    conf = spec.get("conf", {})
    conf = dict(conf(server) if callable(conf) else conf)
    if "state_dir" in conf:
        conf["state_dir"] = paths[conf["state_dir"]]
    text = server.conf(cfg_pebble, conf.pop("state_dir", state_dir), **conf)
    if "edit" in spec:
        text = spec["edit"](server, text)
    server.raw.write_conf(text)
    before = _snapshot(workdir, server.home)

    rc, out = server.test_config()

    assert rc != 0, "%s -t accepted it:\n%s" % (server.kind, out)
    assert server.config_ok not in out, out
    if server.kind == "nginx":
        assert "[emerg]" in out, out
    for w in spec["words"]:
        for k, v in dict(paths, conf=server.raw.conf_path).items():
            w = tuple(x.replace("@%s@" % k, v) for x in w) if isinstance(w, tuple) \
                else w.replace("@%s@" % k, v)
        if isinstance(w, tuple):
            assert any(re.search(r"\b%s\b" % re.escape(x), out) for x in w), \
                "none of %s named in:\n%s" % (w, out)
        else:
            assert w in out, "%r not in:\n%s" % (w, out)
    for w in spec.get("absent", ()):
        assert w not in out, "%r in:\n%s" % (w, out)
    lines = _reported_lines(out, server.raw.conf_path)
    assert lines, "no %s:LINE in:\n%s" % (server.raw.conf_path, out)
    lo, hi = spec["where"](server)
    assert any(lo <= n <= hi for n in lines), (lines, lo, hi, out)
    assert _snapshot(workdir, server.home) == before, "%s -t wrote files" % server.kind
    assert not os.path.exists(os.path.join(workdir, "state")), "-t created the state dir"
    assert os.listdir(os.path.join(workdir, "areal")) == []


def test_valid_config_writes_nothing(server, cfg_pebble, workdir, state_dir):
    server.write_managed(cfg_pebble, state_dir)
    before = _snapshot(workdir, server.home)
    rc, out = server.test_config()
    assert rc == 0, out
    assert server.config_ok in out, out
    if server.kind == "apache":
        rc, out = server.raw.apachectl_configtest()
        assert rc == 0 and "Syntax OK" in out, out
    assert _snapshot(workdir, server.home) == before, "%s -t wrote files" % server.kind
    assert not os.path.exists(os.path.dirname(state_dir)), "-t created the state dir"


@pytest.mark.parametrize("server", ["apache"], indirect=True)
def test_apachectl_configtest_reports_errors(server, cfg_pebble, state_dir):
    server.raw.write_conf(_wrong_issuer(server, server.conf(cfg_pebble, state_dir)))
    rc, out = server.raw.apachectl_configtest()
    assert rc != 0, out
    assert "no <AcmeIssuer nosuch>" in out
    assert not os.path.exists(os.path.dirname(state_dir))


@pytest.mark.parametrize("server", ["apache"], indirect=True)
def test_no_ssl_engine_is_warned_about(server, cfg_pebble, state_dir):
    """AcmeCertificate in a vhost without "SSLEngine on": apache2 -t warns
    as the start does (the certificate would be obtained, never served),
    naming the AcmeCertificate line; the configuration still loads."""
    text = server.conf(cfg_pebble, state_dir)
    assert text.count("    SSLEngine on\n") == 1, text
    server.raw.write_conf(text.replace("    SSLEngine on\n", "", 1))
    rc, out = server.test_config()
    assert rc == 0, out
    assert server.config_ok in out, out
    warns = [l for l in out.splitlines() if "SSLEngine on" in l]
    assert len(warns) == 1, out
    assert "[warn]" in warns[0] or ":warn]" in warns[0], warns
    assert "the certificate is obtained but not served there" in warns[0], warns
    assert _reported_lines(warns[0], server.raw.conf_path) == [_cert_line(server)], warns


def test_name_not_served_is_warned_about(server, cfg_pebble, state_dir):
    """An explicit certificate name that no server name of the server /
    vhost matches would be certified but never reached by SNI: a warning
    naming it and the line; the configuration still loads."""
    server.write_managed(cfg_pebble, state_dir,
                         cert_args="a.example.test zz.example.test")
    rc, out = server.test_config()
    assert rc == 0, out
    assert server.config_ok in out, out
    warns = [l for l in out.splitlines() if "zz.example.test" in l]
    assert len(warns) == 1, out
    if server.kind == "nginx":
        assert "[warn]" in warns[0] and "server_name" in warns[0] \
            and '"zz.example.test"' in warns[0], warns
    else:
        assert "'zz.example.test' is not a ServerName/ServerAlias of this vhost" in warns[0]
    assert _reported_lines(warns[0], server.raw.conf_path) == [_cert_line(server)], warns


def test_certificate_twice_names_both_lines(server, cfg_pebble, state_dir):
    """The same certificate twice in one server / vhost: the error is at
    the second line and names the first; an ECDSA + RSA pair for the same
    names is two certificates, which is fine."""
    text = server.conf(cfg_pebble, state_dir, cert_args="a.example.test b.example.test")
    server.raw.write_conf(_repeat_cert(server, text))
    rc, out = server.test_config()
    assert rc != 0, out
    first = server.conf_line("pebble a.example.test b.example.test")
    second = server.conf_line("pebble b.example.test a.example.test")
    assert first < second
    assert set(_reported_lines(out, server.raw.conf_path)) == {first, second}, out

    server.raw.write_conf(_repeat_cert(server, text).replace(
        "pebble b.example.test a.example.test", "pebble b.example.test a.example.test "
        "key=rsa:2048"))
    rc, out = server.test_config()
    assert rc == 0, out
    assert server.config_ok in out, out


def test_key_type_twice_names_both_lines(server, cfg_pebble, state_dir):
    """Two certificates of one key type in one server / vhost, for other
    names (one of them the default key type, the other given): refused at
    the second line, naming the first, as the server holds one certificate
    per key type."""
    text = server.conf(cfg_pebble, state_dir, cert_args="a.example.test b.example.test")
    server.raw.write_conf(_repeat_cert(server, text).replace(
        "pebble b.example.test a.example.test", "pebble b.example.test key=ecdsa:256"))
    rc, out = server.test_config()
    assert rc != 0, out
    assert server.config_ok not in out, out
    assert "same key type" in out, out
    first = server.conf_line("pebble a.example.test b.example.test")
    second = server.conf_line("pebble b.example.test key=ecdsa:256")
    assert first < second
    assert set(_reported_lines(out, server.raw.conf_path)) == {first, second}, out


# The server names of test_names_outside_server_name_are_warned_about:
# exact, "*.suffix" (both servers, any depth), "prefix.*" (both); nginx's
# ".suffix" (Apache has no such form: its "d" names are spelled out).
SERVED = {"nginx": ("a.example.test", "*.w.example.test", ".d.example.test", "www.p.*"),
          "apache": ("a.example.test", "*.w.example.test", "d.example.test",
                     "*.d.example.test", "www.p.*")}
NOT_SERVED = {"nginx": ("[warn]", '"%s"', "server_name"),
              "apache": ("'%s' is not a ServerName/ServerAlias of this vhost",)}


def test_names_outside_server_name_are_warned_about(server, cfg_pebble, state_dir):
    """Both servers by one rule (acme_name_served): names covered exactly,
    by a wildcard server name / ServerAlias at any depth, or IP literals
    (reached by address, without SNI) are not warned about; each not
    covered name is, naming its line."""
    server.write_managed(
        cfg_pebble, state_dir, names=SERVED[server.kind],
        cert_args="A.example.test x.w.example.test y.x.w.example.test d.example.test "
                  "y.d.example.test www.p.example 127.0.0.1 ::1",
        more=[server.vhost(("a.example.test",), "c.example.test w.example.test key=rsa:2048")])
    rc, out = server.test_config()
    assert rc == 0, out
    assert server.config_ok in out, out
    warned = {n for n in ("a.example.test", "x.w.example.test", "y.x.w.example.test",
                          "d.example.test", "y.d.example.test", "www.p.example",
                          "127.0.0.1", "::1", "c.example.test", "w.example.test")
              if any(all((w % n if "%s" in w else w) in l for w in NOT_SERVED[server.kind])
                     for l in out.splitlines())}
    assert warned == {"c.example.test", "w.example.test"}, out
    warns = [l for l in out.splitlines() if "c.example.test" in l or "w.example.test\"" in l
             or "'w.example.test'" in l]
    assert len(warns) == 2, out
    for w in warns:
        assert _reported_lines(w, server.raw.conf_path) == \
            [server.conf_line("c.example.test w.example.test key=rsa:2048")], warns


def test_plain_http_uri_is_warned_about(server, cfg_pebble, state_dir):
    """RFC 8555 section 6.1: ACME runs over HTTPS; an http:// directory URL
    still loads (a lab CA) with a warning naming the line."""
    plain = cfg_pebble.directory_url.replace("https://", "http://")
    server.raw.write_conf(server.edit_issuer_opt(server.conf(cfg_pebble, state_dir), "uri", plain))
    rc, out = server.test_config()
    assert rc == 0, out
    assert server.config_ok in out, out
    warns = [l for l in out.splitlines() if "plain HTTP" in l]
    assert len(warns) == 1, out
    assert _reported_lines(warns[0], server.raw.conf_path) == \
        [server.conf_line("http://")], warns
    if server.kind == "nginx":
        assert "[warn]" in warns[0], warns
    else:
        assert re.search(r"AcmeDirectory http://\S+ \(%s:\d+\) is plain HTTP"
                         % re.escape(server.raw.conf_path), warns[0]), warns

"""The migration guides (docs/migrate-*.md) load: every nginx / Apache
configuration block of a guide is read FROM the markdown and checked with
`nginx -t` / `apache2 -t` on Debian's binaries, so guide and code cannot
drift apart.

A block is tested when an HTML comment marks it, on the line before its
fence:

    <!-- test: nginx after -->
    ```nginx
    ...
    ```

    <!-- test: KIND LABEL [acme=no] [modules=NAME,...] -->

KIND is nginx or apache; LABEL names the block in the test id (unique in
its guide); acme=no loads the block without our module (a configuration
of before the switch); modules= (Apache) loads these Debian modules too
(as `a2enmod NAME` would: md, rewrite, http2, alias, headers, status;
authz_host, which Debian enables by default, always).  An
nginx block is the text of the http{} block (a file of sites-enabled/), an
Apache block the text after the server's main configuration (a file of
sites-enabled/); the harnesses (nginx_server.py, apache_server.py) give the
rest: user www-data, logs, our module's load line.

Paths of the blocks below /etc/letsencrypt, /var/lib/apache2/md and
/var/cache/nginx (certbot's, mod_md's and nginx-acme's files, which the
bridge reads) are moved into the test's directory, and the files named
there are made: one self-signed certificate and key for the certificates
and keys, stand-ins for certbot's options-ssl-nginx.conf /
options-ssl-apache.conf, the RFC 7919 group for ssl-dhparams.pem.
Every nginx / Apache fence of a guide must be marked (or be marked
`<!-- test: none (why) -->`): no configuration goes untested.

certbot's steps 2 and 3 are also run end to end, on both servers, against
pebble: the "before" block served without our module, the "after" block
loaded by a reload / graceful restart, the certificate issued through
certbot's redirecting port 80 server / vhost, the notice the guide quotes
logged once.  The rest of the bridge is test_bridge.py's.
"""

import os
import re
import subprocess

import pytest

from cryptography import x509

from apache_server import MODDIR
from apache_server import MODULE as APACHE_MODULE
from nginx_server import HTTPS_PORT
from nginx_server import MODULE as NGINX_MODULE
from pebble import HTTP_PORT
from tlsutil import served_cert, wait_acme_cert, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GUIDES = ("migrate-certbot.md", "migrate-mod_md.md", "migrate-nginx-acme.md")

# the blocks each guide must have (so a block dropped from a guide fails)
REQUIRED = {
    "migrate-certbot.md": {("nginx", "before"), ("nginx", "after"), ("nginx", "final"),
                           ("apache", "before"), ("apache", "after"), ("apache", "final")},
    "migrate-mod_md.md": {("apache", "before"), ("apache", "after")},
    "migrate-nginx-acme.md": {("nginx", "before"), ("nginx", "after")},
}

APACHE_MODULES = {"authz_host": ("authz_host_module", "mod_authz_host.so"),
                  "alias": ("alias_module", "mod_alias.so"),
                  "md": ("md_module", "mod_md.so"), "rewrite": ("rewrite_module", "mod_rewrite.so"),
                  "http2": ("http2_module", "mod_http2.so"),
                  "headers": ("headers_module", "mod_headers.so"),
                  "status": ("status_module", "mod_status.so")}

# directories of other tools whose files the guides name
MOVED = ("/etc/letsencrypt", "/var/lib/apache2/md", "/var/cache/nginx")

MARK = re.compile(r"^<!-- test: (.*?) -->\n```(\w+)\n(.*?)^```$", re.M | re.S)
FENCE = re.compile(r"^```(nginx|apache)$", re.M)

OPTIONS_NGINX = """\
# stand-in for certbot's options-ssl-nginx.conf
ssl_session_cache shared:le_nginx_SSL:10m;
ssl_session_timeout 1440m;
ssl_session_tickets off;
ssl_protocols TLSv1.2 TLSv1.3;
ssl_prefer_server_ciphers off;
"""

OPTIONS_APACHE = """\
# stand-in for certbot's options-ssl-apache.conf
SSLEngine on
SSLProtocol all -SSLv2 -SSLv3 -TLSv1 -TLSv1.1
SSLHonorCipherOrder off
SSLSessionTickets off
"""


def _apache_body(opts, text):
    """An Apache block with the LoadModule lines of its modules= option."""
    mods = ["authz_host"] + [m for m in opts.get("modules", "").split(",") if m]
    return "".join("LoadModule %s %s/%s\n" % (APACHE_MODULES[m][0], MODDIR, APACHE_MODULES[m][1])
                   for m in mods) + text


def _blocks(guide):
    """[(kind, label, options, text)] of the guide's marked blocks."""
    with open(os.path.join(REPO, "docs", guide)) as f:
        md = f.read()
    out = []
    for m in MARK.finditer(md):
        words = m.group(1).split()
        if words[0] == "none":
            continue
        kind, label, opts = words[0], words[1], dict(w.split("=", 1) for w in words[2:])
        assert m.group(2) == kind, "%s: block %s %s is fenced ```%s" % (
            guide, kind, label, m.group(2))
        out.append((kind, label, opts, m.group(3)))
    return md, out


def _block(guide, kind, label):
    return [(o, t) for k, l, o, t in _blocks(guide)[1] if (k, l) == (kind, label)][0]


def _cases():
    return [(g, kind, label) for g in GUIDES for kind, label, _, _ in _blocks(g)[1]]


def test_every_block_is_marked():
    """Each guide has its before / after blocks, every nginx / Apache fence
    is marked, labels are unique."""
    for g in GUIDES:
        md, blocks = _blocks(g)
        marked = len(MARK.findall(md))
        assert marked == len(FENCE.findall(md)), \
            "%s: an nginx / apache block without a <!-- test: ... --> line" % g
        labels = [(k, l) for k, l, _, _ in blocks]
        assert len(labels) == len(set(labels)), "%s: a label twice: %s" % (g, labels)
        assert REQUIRED[g] <= set(labels), "%s: missing %s" % (g, REQUIRED[g] - set(labels))


APACHE_FENCE = re.compile(r"^```apache\n(.*?)^```$", re.M | re.S)


def test_apache_blocks_have_no_comment_after_a_directive():
    """Apache takes no comment after a directive: `SSLCertificateFile F  # x`
    fails `apache2 -t` ("takes one argument"), `Require local  # x` passes
    by luck.  No Apache block of the README or the guides (the ones an
    operator copies, tested or not) has one."""
    bad = []
    for name in ["README.md"] + ["docs/" + g for g in sorted(os.listdir(os.path.join(REPO, "docs")))
                                 if g.endswith(".md")]:
        with open(os.path.join(REPO, name)) as f:
            md = f.read()
        for m in APACHE_FENCE.finditer(md):
            for line in m.group(1).splitlines():
                s = line.strip()
                if s and not s.startswith("#") and re.search(r"\s#", s):
                    bad.append("%s: %s" % (name, s))
    assert not bad, "comments after Apache directives:\n" + "\n".join(bad)

def _make_files(text, root):
    """Moves MOVED paths below root and makes the files they name."""
    for p in MOVED:
        text = text.replace(p, root + p)
    key = crt = None
    for path in sorted(set(re.findall(r"(%s/\S+?)[;\s\"]" % re.escape(root), text + "\n"))):
        base = os.path.basename(path)
        if "." not in base:
            continue            # a directory (a state_path): not made
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if key is None:
            key, crt = os.path.join(root, "self.key"), os.path.join(root, "self.crt")
        if not os.path.exists(key):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                            "-days", "30", "-subj", "/CN=example.com", "-addext",
                            "subjectAltName=DNS:example.com,DNS:www.example.com"],
                           check=True, capture_output=True)
        if base == "options-ssl-nginx.conf":
            data = OPTIONS_NGINX
        elif base == "options-ssl-apache.conf":
            data = OPTIONS_APACHE
        elif base == "ssl-dhparams.pem":
            data = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH",
                                   "-pkeyopt", "group:ffdhe2048"], check=True,
                                  capture_output=True, text=True).stdout
        else:
            with open(key if "key" in base else crt) as f:
                data = f.read()
        with open(path, "w") as f:
            f.write(data)
        os.chmod(path, 0o600 if "key" in base else 0o644)
    return text


@pytest.mark.parametrize("guide,kind,label", _cases(),
                         ids=["%s-%s-%s" % c for c in _cases()])
def test_guide_block_loads(guide, kind, label, workdir, nginx_factory, apache_factory):
    opts, text = _block(guide, kind, label)
    text = _make_files(text, os.path.join(workdir, "files"))
    ours = opts.get("acme", "yes") != "no"
    if kind == "nginx":
        srv = nginx_factory(**({} if ours else {"module": None}))
        srv.write_conf(text)
        ok = "test is successful"
    else:
        srv = apache_factory(**({} if ours else {"module": None, "loglevel": "info"}))
        srv.write_conf(_apache_body(opts, text))
        ok = "Syntax OK"
    rc, out = srv.test_config()
    assert rc == 0 and ok in out, "%s %s %s:\n%s\n%s" % (guide, kind, label, out, text)
    # a guide's configuration loads cleanly: no warning either
    bad = [l for l in out.splitlines() if "[warn]" in l or "[emerg]" in l or ":warn]" in l
           or "AH0" in l]
    assert not bad, "%s %s %s:\n%s" % (guide, kind, label, out)


def _sub(text, old, new):
    assert old in text, "%r not in the block" % old
    return text.replace(old, new)


LE = "https://acme-v02.api.letsencrypt.org/directory"
# the first backoff step against pebble (the guides keep the default, 60 s):
# an attempt lost to the known race below is followed seconds later
RETRY = "3s"


def _against_pebble(kind, text, pebble, state_dir, https_port, http_port):
    """The guide's block on the test's loopback ports, pebble as the CA."""
    if kind == "nginx":
        text = _sub(text, "listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % https_port)
        text = _sub(text, "listen 80;", "listen 127.0.0.1:%d;" % http_port)
        return text.replace("uri %s;" % LE, "uri %s;\n    ssl_trusted_certificate %s;\n"
                            "    state_path %s;\n    retry_delay %s;"
                            % (pebble.directory_url, pebble.ca_pem, state_dir, RETRY))
    text = _sub(text, "<VirtualHost *:443>", "<VirtualHost 127.0.0.1:%d>" % https_port)
    text = _sub(text, "<VirtualHost *:80>", "<VirtualHost 127.0.0.1:%d>" % http_port)
    return text.replace("AcmeDirectory %s" % LE, "AcmeDirectory %s\n    AcmeTrustedCA %s\n"
                        "    AcmeStateDir %s\n    AcmeRetryDelay %s"
                        % (pebble.directory_url, pebble.ca_pem, state_dir, RETRY))


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_certbot_steps_against_pebble(kind, pebble, root_file, state_dir, workdir,
                                      nginx_factory, apache_factory):
    """Steps 2 and 3 of the certbot guide: the server runs certbot's
    "before" configuration (without our module); the "after" one is loaded
    by a reload / graceful restart; the certificate is issued through
    certbot's redirecting port 80 server / vhost and served for both names;
    the notice of step 3 is logged once."""
    files = os.path.join(workdir, "files")
    if kind == "nginx":
        srv = nginx_factory(module=None)
        module, ports = NGINX_MODULE, (HTTPS_PORT, HTTP_PORT)
    else:
        srv = apache_factory(module=None, loglevel="info")
        module, ports = APACHE_MODULE, (srv.https_port, srv.http_port)

    def write(label):
        opts, text = _block("migrate-certbot.md", kind, label)
        text = _against_pebble(kind, _make_files(text, files), pebble, state_dir, *ports)
        if kind == "nginx":
            srv.write_conf(text)
        else:
            srv.write_conf(_apache_body(opts, text))

    write("before")
    srv.start(ports=ports)
    with open(os.path.join(files, "self.crt"), "rb") as f:
        certbot = x509.load_pem_x509_certificate(f.read())
    assert served_cert(ports[0], "example.com").serial_number == certbot.serial_number

    srv.module = module
    if kind == "apache":
        srv.loglevel = "info acme_auto:debug"
    write("after")
    srv.reload() if kind == "nginx" else srv.graceful()
    # nginx: the new workers order at once, while the previous generation's
    # workers (no module, certbot's redirect) may still take the CA's
    # validation for a moment; that first attempt then fails and the next
    # one (retry_delay, RETRY here) issues: a known race (README "Migrating")
    cert = wait_acme_cert(ports[0], "example.com", root_file, 100, proc_alive=srv.running)
    assert cert.serial_number != certbot.serial_number
    for _ in range(3):
        assert served_cert(ports[0], "www.example.com").serial_number == cert.serial_number
    # the notice the guide's step 3 quotes
    notice = "is no longer used and can be removed from the configuration"
    wait_for(lambda: notice in srv.error_log(), 20, "the bridge's notice")
    assert srv.error_log().count(notice) == 1, srv.error_log()[-3000:]

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
(as `a2enmod NAME` would: md, rewrite, http2, headers, status).  An
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

One guide step is run end to end as well: certbot's "after" blocks (its
redirecting port 80 server / vhost left as it was, its certificate as the
bridge) get the managed certificate from pebble, and the log line the guide
tells the operator to wait for is there, once.  The rest of the bridge is
test_bridge.py's.
"""

import os
import re
import subprocess

import pytest

from apache_server import MODDIR, ApacheServer
from nginx_server import HTTPS_PORT, NginxServer
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
        elif "key" in base:
            data = open(key).read()
        else:
            data = open(crt).read()
        with open(path, "w") as f:
            f.write(data)
        os.chmod(path, 0o600 if "key" in base else 0o644)
    return text


@pytest.mark.parametrize("guide,kind,label", _cases(),
                         ids=["%s-%s-%s" % c for c in _cases()])
def test_guide_block_loads(guide, kind, label, workdir):
    opts, text = [(o, t) for k, l, o, t in _blocks(guide)[1] if (k, l) == (kind, label)][0]
    text = _make_files(text, os.path.join(workdir, "files"))
    ours = opts.get("acme", "yes") != "no"
    if kind == "nginx":
        srv = NginxServer(os.path.join(workdir, "nginx"), **({} if ours else {"module": None}))
        srv.write_conf(text)
        ok = "test is successful"
    else:
        srv = ApacheServer(os.path.join(workdir, "apache"),
                           **({} if ours else {"module": None, "loglevel": "info"}))
        # authz_host (Require local) is enabled on Debian by default
        mods = ["authz_host"] + [m for m in opts.get("modules", "").split(",") if m]
        srv.write_conf("".join("LoadModule %s %s/%s\n" % (APACHE_MODULES[m][0], MODDIR,
                                                          APACHE_MODULES[m][1])
                               for m in mods) + text)
        ok = "Syntax OK"
    rc, out = srv.test_config()
    assert rc == 0 and ok in out, "%s %s %s:\n%s\n%s" % (guide, kind, label, out, text)
    # a guide's configuration loads cleanly: no warning either
    bad = [l for l in out.splitlines() if "[warn]" in l or "[emerg]" in l or ":warn]" in l
           or "AH0" in l]
    assert not bad, "%s %s %s:\n%s" % (guide, kind, label, out)


def _block(guide, kind, label):
    return [(o, t) for k, l, o, t in _blocks(guide)[1] if (k, l) == (kind, label)][0]


def _sub(text, old, new):
    assert text.count(old) >= 1, "%r not in the block" % old
    return text.replace(old, new)


def _against_pebble(kind, text, pebble, state_dir, https_port, http_port):
    """The guide's block on the test's loopback ports, pebble as the CA."""
    le = "https://acme-v02.api.letsencrypt.org/directory"
    if kind == "nginx":
        text = _sub(text, "listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % https_port)
        text = _sub(text, "listen 80;", "listen 127.0.0.1:%d;" % http_port)
        return _sub(text, "uri %s;" % le, "uri %s;\n    ssl_trusted_certificate %s;\n"
                    "    state_path %s;" % (pebble.directory_url, pebble.ca_pem, state_dir))
    text = _sub(text, "<VirtualHost *:443>", "<VirtualHost 127.0.0.1:%d>" % https_port)
    text = _sub(text, "<VirtualHost *:80>", "<VirtualHost 127.0.0.1:%d>" % http_port)
    return _sub(text, "AcmeDirectory %s" % le, "AcmeDirectory %s\n    AcmeTrustedCA %s\n"
                "    AcmeStateDir %s" % (pebble.directory_url, pebble.ca_pem, state_dir))


@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_certbot_after_block_gets_its_certificate(kind, pebble, root_file, state_dir, workdir,
                                                  nginx_factory, apache_factory):
    opts, text = _block("migrate-certbot.md", kind, "after")
    text = _make_files(text, os.path.join(workdir, "files"))
    bridge = os.path.join(workdir, "files", "self.crt")
    if kind == "nginx":
        srv = nginx_factory()
        srv.write_conf(_against_pebble(kind, text, pebble, state_dir, HTTPS_PORT, HTTP_PORT))
        port = HTTPS_PORT
    else:
        srv = apache_factory()
        mods = [m for m in opts.get("modules", "").split(",") if m]
        srv.write_conf("".join("LoadModule %s %s/%s\n" % (APACHE_MODULES[m][0], MODDIR,
                                                          APACHE_MODULES[m][1])
                               for m in ["authz_host"] + mods)
                       + _against_pebble(kind, text, pebble, state_dir, srv.https_port,
                                         srv.http_port))
        port = srv.https_port
    with open(bridge) as f:
        assert "BEGIN CERTIFICATE" in f.read()
    srv.start()
    cert = wait_acme_cert(port, "example.com", root_file, 60, proc_alive=srv.running)
    assert "www.example.com" in str(cert.extensions)
    for _ in range(3):
        assert served_cert(port, "www.example.com").serial_number == cert.serial_number
    # the notice the guide's step 3 quotes
    notice = "is no longer used and can be removed from the configuration"
    wait_for(lambda: notice in srv.error_log(), 20, "the bridge's notice")
    assert srv.error_log().count(notice) == 1, srv.error_log()[-3000:]

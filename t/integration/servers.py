"""One interface over the nginx and Apache harnesses, for the tests whose
contract is the same on both servers.

    def test_x(server, pebble, state_dir):       # conftest: server fixture
        server.start_managed(pebble, state_dir, issuer={"renew_before_expiry": "66%"})
        server.status(); server.reload(); server.problems(); server.stop()

The `server` fixture (conftest.py) is parametrised over "nginx" and
"apache", so test ids show the server (test_first_issue[nginx]); a test may
widen it with @pytest.mark.parametrize("server", [...], indirect=True) and
the values "apache-worker" / "apache-prefork" (another MPM).  server.raw is
the NginxServer / ApacheServer underneath, for what only one server has.

Configuration: one issuer "pebble" with the given options, one managed
HTTPS server/vhost for `names` (nginx: server_name; Apache: ServerName +
ServerAlias) with /acme-status, the plain HTTP server/vhost on pebble's
http-01 port (also /acme-status), plus `more` (blocks from vhost() /
static_vhost(), each server's own syntax).
"""

import apache_server
import nginx_server
from pebble import HTTP_PORT, TLS_PORT
from serverlib import status_cert

HTTPS_PORT = nginx_server.HTTPS_PORT
assert HTTPS_PORT == apache_server.HTTPS_PORT
NAMES = ("a.example.test", "b.example.test")

# issuer options both servers have, by nginx's name -> Apache's directive
APACHE_ISSUER = {
    "renew_before_expiry": "AcmeRenewBeforeExpiry",
    "challenge": "AcmeChallenge",
    "timeout": "AcmeTimeout",
    "account_key": "AcmeAccountKey",
    "retry_delay": "AcmeRetryDelay",
    "clock_skew": "AcmeClockSkew",
    "max_orders": "AcmeMaxOrders",
    "contact": "AcmeContact",
    "preferred_chain": "AcmePreferredChain",
    "key_reuse": "AcmeKeyReuse",
    "key_rollover": "AcmeKeyRollover",
    "profile": "AcmeProfile",
    "proxy": "AcmeProxy",
    "ari_poll_interval": "AcmeARIPollInterval",
}


class Server:
    """Base: what both adapters share.  Subclasses set kind, raw."""

    kind = None
    https_port = HTTPS_PORT
    http_port = HTTP_PORT
    addr = "127.0.0.1"      # use_address(): several servers on one port

    def __init__(self, factory, **opts):
        self._factory = factory
        self._opts = opts
        self._raw = None

    def __repr__(self):
        return "<%s server>" % self.kind

    # -- the harness object underneath, made at first use ------------------
    def configure(self, **opts):
        """Options of the harness object (nginx: workers=; Apache:
        children=, mpm=), before its first use."""
        assert self._raw is None, "configure() before the first use"
        self._opts.update(opts)
        return self

    @property
    def raw(self):
        if self._raw is None:
            self._raw = self._factory(**self._adapt_opts(self._opts))
        return self._raw

    def _adapt_opts(self, opts):
        return dict(opts)

    # -- configuration -----------------------------------------------------
    def issuer_lines(self, issuer):
        """issuer: a dict of options both servers have (APACHE_ISSUER keys),
        or raw text for this server, or a list of either."""
        if isinstance(issuer, (list, tuple)):
            return "\n".join(self.issuer_lines(i) for i in issuer)
        if isinstance(issuer, dict):
            return "\n".join(self.issuer_opt(k, v) for k, v in issuer.items())
        return issuer or ""

    def write_managed(self, pebble, state_dir, **kw):
        return self.raw.write_conf(self.conf(pebble, state_dir, **kw))

    def write_certs(self, pebble, state_dir, certs, issuer=None):
        """certs: [(names, acme_certificate / AcmeCertificate arguments)],
        one managed server / vhost each (the first one's names also on the
        plain HTTP server / vhost, which answers /acme-status)."""
        (names, args), rest = certs[0], certs[1:]
        return self.write_managed(pebble, state_dir, names=names, cert_args=args,
                                  issuer=issuer, more=[self.vhost(n, a) for n, a in rest])

    def start_managed(self, pebble, state_dir, **kw):
        self.write_managed(pebble, state_dir, **kw)
        return self.start()

    def conf_line(self, needle):
        return self.raw.conf_line(needle)

    def test_config(self):
        return self.raw.test_config()

    # -- processes ---------------------------------------------------------
    def running(self):
        return self.raw.running()

    def stop(self):
        self.raw.stop()

    def error_log(self, since_start=False):
        return self.raw.error_log(since_start=since_start)

    # -- status ------------------------------------------------------------
    def status(self, host="a.example.test"):
        return nginx_server.get_status(self.http_port, host=host, addr=self.addr)

    # -- several servers, one certificate (issue 15, test_fleet.py) --------
    def use_address(self, addr):
        """Listen on addr (another 127.0.0.x) instead of 127.0.0.1, the same
        ports: several servers on one machine, each a node of a fleet
        (fleet.py); before start()."""
        self.addr = addr
        return self

    def status_cert(self, cert_id=None, host="a.example.test"):
        return status_cert(self.status(host=host), cert_id)

    # -- tests1 (issue 8): configuration tests, other ports --------------
    @property
    def home(self):
        """The server's own directory (its -t writes logs / pid files there)."""
        return self.raw.dir

    def conf_lines(self, needle):
        """1-based numbers of every line of the configuration with needle."""
        with open(self.raw.conf_path) as f:
            return [i for i, line in enumerate(f, 1) if needle in line]

    def block_of(self, line):
        """(first, last) line of the innermost block (nginx {...}, Apache
        <Section>...</Section>) that holds configuration line `line`."""
        stack, best = [], None
        with open(self.raw.conf_path) as f:
            for i, text in enumerate(f, 1):
                for step in self._block_steps(text):
                    if step:
                        stack.append(i)
                    elif stack:
                        first = stack.pop()
                        if first <= line <= i and (best is None or first >= best[0]):
                            best = (first, i)
        assert best, "line %d is in no block" % line
        return best


class Nginx(Server):
    kind = "nginx"
    plain_http_body = b"plain http"

    def _adapt_opts(self, opts):
        opts = dict(opts)
        if "processes" in opts:
            opts["workers"] = opts.pop("processes")
        return opts

    def issuer_opt(self, name, value):
        return "%s %s;" % (name, value)

    def conf(self, pebble, state_dir, names=NAMES, issuer=None, cert_args="", more=()):
        return self._moved(nginx_server.managed_http_conf(
            pebble, state_dir, names=" ".join(names), cert_args=cert_args,
            issuer_extra=self.issuer_lines(issuer), http_extra="\n".join(more)))

    def vhost(self, names, cert_args="", explicit=False):
        """Another managed HTTPS server; explicit: the names on the
        acme_certificate line too."""
        return """
    server {
        listen 127.0.0.1:%d ssl;
        server_name %s;
        acme_certificate pebble%s%s;
    }""" % (self.https_port, " ".join(names),
            (" " + " ".join(names)) if explicit else "",
            (" " + cert_args) if cert_args else "")

    def static_vhost(self, name, crt, key):
        """An HTTPS server with a certificate from files, the default one
        of the listener."""
        return """
    server {
        listen 127.0.0.1:%d ssl default_server;
        server_name %s;
        ssl_certificate %s;
        ssl_certificate_key %s;
        location / { return 200 "static\\n"; }
    }""" % (self.https_port, name, crt, key)

    def start(self, ports=None):
        self.raw.listen_host = self.addr
        self.raw.start(ports=ports if ports is not None else (self.https_port, self.http_port))
        return self

    def reload(self):
        """HUP; the new set of workers (sorted pids)."""
        return self.raw.reload()

    def pids(self):
        """The processes that serve and drive ACME (workers)."""
        return self.raw.worker_pids()

    @property
    def main_pid(self):
        return self.raw.master_pid

    def generations(self):
        """Configuration generations in the error log (1: no reload)."""
        return 1 + self.raw.error_log().count("reconfiguring")

    def problems(self):
        return self.raw.alerts()

    def issued_count(self, cert_id):
        """Certificates issued for cert_id, by the error log."""
        return self.raw.error_log().count('acme: certificate "%s" issued' % cert_id)

    def wait_installed(self, timeout=20):
        """Until every worker installed the newest activation of every
        certificate id into its SSL contexts: each worker checks the zone
        every 25 ms and logs 'installed in worker process PID' once it has;
        until then it serves what it had (placeholder, bridge, previous)."""
        import re
        from tlsutil import wait_for

        def every_worker_installed():
            log = self.error_log()
            last = {}
            for m in re.finditer(r'acme: certificate "([^"]+)" activated in all', log):
                last[m.group(1)] = m.end()
            for cid, at in last.items():
                done = {int(p) for p in re.findall(
                    r'acme: certificate "%s" installed in worker process (\d+)'
                    % re.escape(cid), log[at:])}
                if not set(self.pids()) <= done:
                    return False
            return True
        return wait_for(every_worker_installed, timeout,
                        "the newest certificates installed in every worker")

    # -- tests1 (issue 8) ----------------------------------------------
    cert_directive = "acme_certificate"
    config_ok = "test is successful"

    @property
    def home(self):
        return self.raw.prefix

    @staticmethod
    def _block_steps(text):
        text = text.split("#", 1)[0]
        return [c == "{" for c in text if c in "{}"]

    def issuer_block(self, pebble, state_dir, issuer=None, name="pebble"):
        """Another acme_issuer block, "pebble" unless named (for `more`)."""
        return nginx_server.issuer_conf(pebble, state_dir, self.issuer_lines(issuer),
                                        name=name)

    def edit_issuer_opt(self, text, name, value=None):
        """text with the issuer option `name` (nginx's name) set to value,
        or left out (None)."""
        import re
        return re.sub(r"(?m)^(\s*)%s .*;$" % re.escape(name),
                      (r"\g<1>%s %s;" % (name, value)) if value is not None else "",
                      text, count=1)

    # -- moved ports, dns-01 (test_resilience, test_multi, test_dns01) ----
    def use_ports(self, https_port=None, http_port=None):
        """The managed server on https_port, the plain HTTP one (http-01,
        /acme-status) on http_port, instead of HTTPS_PORT / pebble's
        httpPort (e.g. behind an httpgate.HttpGate); before start()."""
        self.https_port = https_port or self.https_port
        self.http_port = http_port or self.http_port
        return self

    def use_tls_alpn(self):
        """tls-alpn-01: the managed server on pebble's tlsPort, the plain
        HTTP one (/acme-status) on HTTPS_PORT: nothing on pebble's httpPort."""
        return self.use_ports(TLS_PORT, HTTPS_PORT)

    def _moved(self, text):
        if self.https_port != HTTPS_PORT:
            text = text.replace("listen 127.0.0.1:%d ssl;" % HTTPS_PORT,
                                "listen 127.0.0.1:%d ssl;" % self.https_port)
        text = text.replace("listen 127.0.0.1:%d;" % HTTP_PORT,
                            "listen 127.0.0.1:%d;" % self.http_port)
        if self.addr != "127.0.0.1":
            text = text.replace("listen 127.0.0.1:", "listen %s:" % self.addr)
        return text

    def store_directive(self, endpoints, key_file, node, prefix="/acme/"):
        """The shared store's line (acme_store, http level; in `more`)."""
        return "acme_store etcd %s prefix=%s key_file=%s node=%s;" % (
            endpoints, prefix, key_file, node)

    def dns_update(self, server, key, secret=None, secret_file=None, alg=None, zone=None):
        """secret: base64 inline; secret_file: a file holding it."""
        return "dns_update %s key=%s secret=%s%s%s;" % (
            server, key, secret_file or "data:" + secret,
            (" alg=" + alg) if alg else "", (" zone=" + zone) if zone else "")

    def dns_hook(self, path, timeout=None):
        return "dns_hook %s%s;" % (path, (" timeout=" + timeout) if timeout else "")

    def dns_propagation_check(self, servers, timeout=None):
        return "dns_propagation_check %s%s;" % (" ".join(servers),
                                                (" timeout=" + timeout) if timeout else "")



class Apache(Server):
    kind = "apache"

    @property
    def plain_http_body(self):
        return b"hello from apache"

    def _adapt_opts(self, opts):
        opts = dict(opts)
        if "processes" in opts:
            opts["children"] = opts.pop("processes")
        return opts

    def issuer_opt(self, name, value):
        return "    %s %s" % (APACHE_ISSUER[name], value)

    def conf(self, pebble, state_dir, names=NAMES, issuer=None, cert_args="", more=()):
        text = self._moved(apache_server.managed_conf(
            pebble, state_dir, names=tuple(names), issuer_extra=self.issuer_lines(issuer),
            cert_args=cert_args))
        # static vhosts first: the first vhost of an address is its default
        first = [m for m in more if "SSLCertificateFile" in m]
        rest = [m for m in more if m not in first]
        if first:
            i = text.index("<VirtualHost 127.0.0.1:%d>" % self.https_port)
            text = text[:i] + "\n".join(first) + "\n" + text[i:]
        return text + "\n".join(rest)

    def vhost(self, names, cert_args="", explicit=False):
        aliases = ("\n    ServerAlias %s" % " ".join(names[1:])) if len(names) > 1 else ""
        return """
<VirtualHost 127.0.0.1:%d>
    ServerName %s%s
    SSLEngine on
    AcmeCertificate pebble%s%s
</VirtualHost>""" % (self.https_port, names[0], aliases,
                     (" " + " ".join(names)) if explicit else "",
                     (" " + cert_args) if cert_args else "")

    def static_vhost(self, name, crt, key):
        return """
<VirtualHost 127.0.0.1:%d>
    ServerName %s
    SSLEngine on
    SSLCertificateFile %s
    SSLCertificateKeyFile %s
</VirtualHost>""" % (self.https_port, name, crt, key)

    def start(self, ports=None):
        self.raw.start(ports=ports)
        return self

    def write_managed(self, pebble, state_dir, **kw):
        # use_address(): the Listen lines (render) and the vhosts
        self.raw.listen_host = self.addr
        return Server.write_managed(self, pebble, state_dir, **kw)

    def store_directive(self, endpoints, key_file, node, prefix="/acme/"):
        """The shared store's line (AcmeStore, server config; in `more`)."""
        return "AcmeStore etcd %s prefix=%s key_file=%s node=%s" % (
            endpoints, prefix, key_file, node)

    def reload(self):
        """Graceful restart (SIGUSR1); the new children (sorted pids)."""
        return self.raw.graceful()

    def pids(self):
        return self.raw.child_pids()

    @property
    def main_pid(self):
        return self.raw.parent_pid

    def generations(self):
        return self.raw.error_log().count("resuming normal operations")

    def problems(self):
        return self.raw.crashes()

    def issued_count(self, cert_id):
        return self.raw.error_log().count("mod_acme_auto: %s: new certificate" % cert_id)

    def wait_installed(self, timeout=20):
        """Until every live child installed the newest generation of every
        certificate id in the log: each child polls the shared generations
        every 25 ms and parses a bundle off the handshake path, so until
        then it serves what it had (the placeholder at first)."""
        import re
        from tlsutil import wait_for

        def every_child_installed():
            inst = re.findall(r"(\S+): generation (\d+) installed in pid (\d+)",
                              self.error_log())
            if not inst:
                return False
            top = {}
            for cid, g, _ in inst:
                top[cid] = max(top.get(cid, 0), int(g))
            have = {(cid, int(g), int(pid)) for cid, g, pid in inst}
            return all((cid, g, pid) in have
                       for cid, g in top.items() for pid in self.pids())
        return wait_for(every_child_installed, timeout,
                        "the newest certificates installed in every child")

    # -- tests1 (issue 8) ----------------------------------------------
    cert_directive = "AcmeCertificate"
    config_ok = "Syntax OK"
    ISSUER_DIRECTIVE = dict(APACHE_ISSUER, uri="AcmeDirectory", state_path="AcmeStateDir",
                            ssl_trusted_certificate="AcmeTrustedCA", contact="AcmeContact")

    @staticmethod
    def _block_steps(text):
        text = text.strip()
        return [not text.startswith("</")] if text.startswith("<") else []

    def issuer_block(self, pebble, state_dir, issuer=None, name="pebble"):
        return apache_server.issuer_conf(pebble, state_dir, self.issuer_lines(issuer),
                                         name=name)

    def edit_issuer_opt(self, text, name, value=None):
        import re
        d = self.ISSUER_DIRECTIVE[name]
        return re.sub(r"(?m)^(\s*)%s .*$" % d,
                      (r"\g<1>%s %s" % (d, value)) if value is not None else "",
                      text, count=1)

    # -- moved ports, dns-01 (test_resilience, test_multi, test_dns01) ----
    def use_ports(self, https_port=None, http_port=None):
        """As Nginx.use_ports (the Listen lines too); before the first use."""
        self.https_port = https_port or self.https_port
        self.http_port = http_port or self.http_port
        return self.configure(https_port=self.https_port, http_port=self.http_port)

    def use_tls_alpn(self):
        """As Nginx.use_tls_alpn; the managed vhost offers acme-tls/1
        (Protocols)."""
        self._alpn = True
        return self.use_ports(TLS_PORT, HTTPS_PORT)

    def _moved(self, text):
        managed = "<VirtualHost 127.0.0.1:%d>" % HTTPS_PORT
        plain = "<VirtualHost 127.0.0.1:%d>" % HTTP_PORT
        text = text.replace(plain, "@PLAIN@").replace(
            managed, "<VirtualHost 127.0.0.1:%d>" % self.https_port)
        text = text.replace("@PLAIN@", "<VirtualHost 127.0.0.1:%d>" % self.http_port)
        if getattr(self, "_alpn", False):
            text = text.replace("    SSLEngine on\n",
                                "    SSLEngine on\n    Protocols http/1.1 acme-tls/1\n", 1)
        if self.addr != "127.0.0.1":
            text = text.replace("<VirtualHost 127.0.0.1:", "<VirtualHost %s:" % self.addr)
        return text

    def dns_update(self, server, key, secret=None, secret_file=None, alg=None, zone=None):
        return "    AcmeDNSUpdate %s %s %s%s%s" % (
            server, key, ("file:" + secret_file) if secret_file else secret,
            (" " + alg) if alg else "", (" zone=" + zone) if zone else "")

    def dns_hook(self, path, timeout=None):
        return "    AcmeDNSHook %s%s" % (path, (" " + timeout) if timeout else "")

    def dns_propagation_check(self, servers, timeout=None):
        return "    AcmeDNSPropagationCheck %s%s" % (" ".join(servers),
                                                    (" " + timeout) if timeout else "")



def make(param, nginx_factory=None, apache_factory=None):
    """The adapter for a `server` fixture parameter: "nginx", "apache" or
    "apache-<mpm>"."""
    if param == "nginx":
        return Nginx(nginx_factory)
    kind, _, mpm = param.partition("-")
    assert kind == "apache", param
    return Apache(apache_factory, mpm=mpm or "event")


SERVERS = ["nginx", "apache"]
APACHE_MPMS = ["apache-worker", "apache-prefork"]


"""The outbound HTTP CONNECT proxy (nginx "proxy URL;" in acme_issuer,
Apache "AcmeProxy URL" in <AcmeIssuer>) against a real proxy: Debian's
tinyproxy on loopback, in the foreground with a configuration written here.

through: the proxy wants credentials (BasicAuth) and allows CONNECT to
pebble's port only: the certificate is issued, the proxy's log shows the
CONNECTs to pebble, the credentials never reach the error log.  refused: the
proxy allows no CONNECT to pebble's port (ConnectPort): a per-certificate
error naming the proxy and its status line, nothing ordered (so nothing went
around the proxy).  badauth: wrong credentials: the proxy's 407 the same
way (tinyproxy answers wrong credentials with 401, missing ones with 407),
the password never logged."""

import os
import subprocess

import pytest

from pebble import API_PORT, PORT_OFFSET, port_open
from ca_proxy import cert_id
from servers import HTTPS_PORT
from tlsutil import wait_acme_cert, wait_for

PROXY_PORT = 3128 + PORT_OFFSET
CID = cert_id("a.example.test")
SECRET = "s3cret-Pw"


class Tinyproxy:
    def __init__(self, workdir, connect_port, auth=None):
        self.conf = os.path.join(workdir, "tinyproxy.conf")
        self.log_path = os.path.join(workdir, "tinyproxy.log")
        lines = ["Port %d" % PROXY_PORT, "Listen 127.0.0.1", "Timeout 30",
                 "MaxClients 20", "LogLevel Connect", "Allow 127.0.0.1",
                 "ConnectPort %d" % connect_port]
        if auth:
            lines.append("BasicAuth %s %s" % auth)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["/usr/bin/tinyproxy", "-d", "-c", self.conf],
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is None and port_open(PROXY_PORT), 10,
                 "tinyproxy listening on %d" % PROXY_PORT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.log_path) as f:
            return f.read()


@pytest.mark.parametrize("case", ["through", "refused", "badauth"])
def test_proxy(server, pebble, workdir, state_dir, case):
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = Tinyproxy(workdir, API_PORT if case != "refused" else 443,
                      auth=("acme", SECRET if case != "badauth" else "other"))
    proxy.start()
    try:
        # through: the proxy by name (resolved by the server; the CA's
        # address never is); otherwise by address, as the errors name it
        host = "localhost" if case == "through" else "127.0.0.1"
        server.start_managed(pebble, state_dir, issuer={
            "proxy": "http://acme:%s@%s:%d" % (SECRET, host, PROXY_PORT)})
        connect = "CONNECT 127.0.0.1:%d HTTP/1.1" % API_PORT
        if case == "through":
            wait_acme_cert(HTTPS_PORT, "a.example.test", root, 60,
                           proc_alive=server.running)
            # keep-alive through the tunnel: an order's requests (at least
            # 8: directory, nonce, account, order, authorization,
            # challenge, finalize, certificate) share few connections
            connects = proxy.log().count(connect)
            assert 1 <= connects <= 3, proxy.log()[-3000:]
        else:
            c = wait_for(lambda: (lambda c: c if c["consecutive_failures"] >= 1 else None)(
                server.status_cert(CID)), 60, "a failed order of %s" % CID)
            err = c["last_error"]
            line = ('"HTTP/1.1 403 Access violation"' if case == "refused"
                    else '"HTTP/1.0 401 Unauthorized" (the proxy refused the '
                    'credentials of the proxy URL)')
            want = ("proxy 127.0.0.1:%d refused CONNECT to 127.0.0.1:%d: %s"
                    % (PROXY_PORT, API_PORT, line))
            assert want in err, err
            assert want in server.error_log(), server.error_log()[-3000:]
            assert c["serial"] is None, c
            assert pebble.orders_created() == 0
            assert connect in proxy.log(), proxy.log()[-3000:]
        log = server.error_log()
        assert SECRET not in log and "YWNtZTpzM2NyZXQtUHc" not in log, log[-3000:]
    finally:
        proxy.stop()

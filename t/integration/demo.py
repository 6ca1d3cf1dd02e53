#!/usr/bin/python3
"""./build.sh demo [nginx|apache] [--no-wait]

Starts pebble on loopback, a web server configured as a user would, waits
until the ACME certificate is served, prints it, then waits for Ctrl-C and
stops everything.  --no-wait stops right after printing (for scripted runs).
"""

import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nginx_server import HTTP_PORT, HTTPS_PORT, NginxServer, make_world_traversable_tmpdir  # noqa: E402
from pebble import Pebble  # noqa: E402
from tlsutil import describe, wait_acme_cert  # noqa: E402

NAMES = "a.example.test b.example.test"

NGINX_HTTP = """
    # one issuer block per ACME CA
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        accept_terms_of_service;
        state_path @STATE@;
        ssl_trusted_certificate @CA@;      # pebble's API has its own test CA
    }

    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name @NAMES@;
        acme_certificate pebble;           # no ssl_certificate needed

        location / { return 200 "hello from $server_name over $ssl_protocol\\n"; }
        location = /acme-status { acme_status; }
    }

    # http-01 challenges arrive here (pebble validates on port 5002)
    server {
        listen 127.0.0.1:@HTTP@;
        server_name @NAMES@;
        location / { return 301 https://$host:@HTTPS@$request_uri; }
    }
"""


class Stop(Exception):
    pass


def _on_signal(signum, frame):
    raise Stop()


def show(cert, root_file, status_url):
    d = describe(cert)
    print()
    print("ACME certificate served on https://127.0.0.1:%d" % HTTPS_PORT)
    print("  subject : %s" % d["subject"])
    print("  SANs    : %s" % ", ".join(d["sans"]))
    print("  issuer  : %s" % d["issuer"])
    print("  serial  : %s" % d["serial"])
    print("  expires : %s" % d["not_after"])
    print("  key     : %s" % d["key"])
    print("status    : %s" % status_url)
    print("try       : curl --cacert %s --resolve a.example.test:%d:127.0.0.1 "
          "https://a.example.test:%d/" % (root_file, HTTPS_PORT, HTTPS_PORT))
    print("            curl -sk --resolve a.example.test:%d:127.0.0.1 %s"
          % (HTTPS_PORT, status_url))
    sys.stdout.flush()


def wait_for_ctrl_c(alive):
    print("\nRunning. Press Ctrl-C to stop.")
    sys.stdout.flush()
    while True:
        if not alive():
            print("server exited unexpectedly")
            return 1
        time.sleep(1)


def run_nginx(work, pebble, root_file, no_wait):
    srv = NginxServer(os.path.join(work, "nginx"), workers=2)
    state = os.path.join(work, "state", "pebble")
    srv.write_conf(NGINX_HTTP, STATE=state, CA=pebble.ca_pem, NAMES=NAMES,
                   URI=pebble.directory_url, HTTP=HTTP_PORT, HTTPS=HTTPS_PORT)
    print("nginx config : %s" % srv.conf_path)
    print("error log    : %s" % srv.error_log_path)
    rc, out = srv.test_config()
    if rc != 0:
        print(out)
        return 1
    try:
        srv.start(ports=(HTTPS_PORT, HTTP_PORT))
        print("nginx started (master %d, workers %s); waiting for the certificate..."
              % (srv.master_pid, srv.worker_pids()))
        sys.stdout.flush()
        cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 120,
                              proc_alive=srv.running)
        show(cert, root_file, "https://a.example.test:%d/acme-status" % HTTPS_PORT)
        print("store        : %s" % state)
        if no_wait:
            return 0
        return wait_for_ctrl_c(srv.running)
    except Exception as e:
        if isinstance(e, Stop):
            raise
        print("demo failed: %s" % e)
        print(srv.error_log()[-3000:])
        return 1
    finally:
        print("stopping nginx")
        srv.stop()


def run_apache(work, pebble, root_file, no_wait):
    # the Apache branch is added by the mod_acme_auto engineer
    # (t/integration/apache_server.py)
    try:
        import apache_server  # noqa: F401
    except ImportError:
        print("Apache demo not available yet (t/integration/apache_server.py missing)")
        return 1
    if not hasattr(apache_server, "demo"):
        print("Apache demo not available yet (apache_server.demo missing)")
        return 1
    return apache_server.demo(work, pebble, root_file, no_wait,
                              show=show, wait_for_ctrl_c=wait_for_ctrl_c)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    no_wait = "--no-wait" in argv
    which = args[0] if args else "nginx"
    runners = {"nginx": run_nginx, "apache": run_apache}
    if which not in runners:
        print("usage: demo.py [nginx|apache] [--no-wait]")
        return 2

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    work = make_world_traversable_tmpdir("ngx-acme-demo-")
    pebble = Pebble(work)
    rc = 1
    try:
        print("working dir  : %s" % work)
        pebble.start()
        root_file = pebble.write_root(os.path.join(work, "pebble-root.pem"))
        print("pebble       : %s (issuing root: %s)" % (pebble.directory_url, root_file))
        rc = runners[which](work, pebble, root_file, no_wait)
    except Stop:
        print("\ninterrupted")
        rc = 0
    finally:
        # a second Ctrl-C must not abandon the clean-up half way
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping pebble")
        pebble.stop()
        if rc == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept %s for inspection" % work)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

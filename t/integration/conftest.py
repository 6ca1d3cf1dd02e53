"""Fixtures for the integration tests (nginx and Apache).

    workdir          a fresh /tmp/ngx-acme-t-* dir (0755, so www-data can
                     traverse it); removed when the test passed, kept (and
                     printed) when it failed
    pebble_factory   pebble_factory(**Pebble options, start=True) -> Pebble
    pebble           a started Pebble with defaults (5-year certificates)
    root_file        pebble's issuing root written to workdir/root.pem
    nginx_factory    nginx_factory(name="nginx", **NginxServer options)
    apache_factory   apache_factory(name="apache", **ApacheServer options)
    server           servers.Nginx / servers.Apache: one test for both
                     servers, parametrised ["nginx", "apache"] (ids
                     test_x[nginx], test_x[apache]); see servers.py
    state_dir        workdir/state/pebble (not created: the module does it)

On failure the teardown prints the tails of pebble's and nginx's logs, which
pytest shows under "Captured stdout teardown".
"""

import os
import shutil

import pytest

import servers
from apache_server import apache_factory  # noqa: F401 (fixture)
from nginx_server import NginxServer, make_world_traversable_tmpdir
from pebble import Pebble, hold_port_lock


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    for when in ("setup", "call"):
        rep = getattr(request.node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


def _tail(text, n=4000):
    return text[-n:] if len(text) > n else text


@pytest.fixture(scope="session", autouse=True)
def _test_ports_lock():
    """One run per port offset at a time on this machine (see hold_port_lock)."""
    hold_port_lock()


@pytest.fixture
def workdir(request):
    d = make_world_traversable_tmpdir()
    yield d
    if _failed(request):
        print("\n[workdir kept: %s]" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pebble_factory(workdir, request):
    started = []

    def make(start=True, **opts):
        p = Pebble(workdir, **opts)
        started.append(p)
        if start:
            p.start()
        else:
            p.prepare()
        return p

    yield make
    for p in started:
        p.stop()
        if _failed(request):
            print("\n===== pebble log (tail) =====\n" + _tail(p.log()))


@pytest.fixture
def pebble(pebble_factory):
    return pebble_factory()


@pytest.fixture
def root_file(pebble, workdir):
    return pebble.write_root(os.path.join(workdir, "root.pem"))


@pytest.fixture
def state_dir(workdir):
    return os.path.join(workdir, "state", "pebble")


@pytest.fixture
def nginx_factory(workdir, request):
    servers = []

    def make(name="nginx", **kw):
        s = NginxServer(os.path.join(workdir, name), **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
        if _failed(request):
            print("\n===== nginx %s error.log (tail) =====\n%s" % (s.prefix, _tail(s.error_log())))
            st = s.stderr_text()
            if st.strip():
                print("===== nginx stderr =====\n" + _tail(st, 2000))
    for s in servers:
        s.check_asan()


@pytest.fixture(params=servers.SERVERS)
def server(request):
    """The server under test, "nginx" or "apache" (or "apache-<mpm>" when a
    test parametrises it with indirect=True)."""
    if request.param == "nginx":
        return servers.make("nginx", nginx_factory=request.getfixturevalue("nginx_factory"))
    return servers.make(request.param, apache_factory=request.getfixturevalue("apache_factory"))


@pytest.fixture
def etcd(workdir):
    """A real etcd (Debian's etcd-server) on loopback, stopped after the
    test (etcd.py)."""
    from etcd import Etcd
    e = Etcd(workdir).start()
    yield e
    e.stop()

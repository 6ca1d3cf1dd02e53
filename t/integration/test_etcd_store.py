"""The shared store's etcd client (common/core/acme_etcd.c through
common/io/acme_kv_client.c, driven by build/kv_probe) against a real etcd:
the conditional writes, leases and fencing that "one order per certificate
across the fleet" rests on, endpoint failover, authentication and TLS."""

import json
import os
import subprocess


from etcd import Etcd

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "..", "..", "build", "kv_probe")
DEAD = "http://127.0.0.1:1"


def kv(endpoints, *args, user=None, password=None, ca=None, repeat=1):
    cmd = [PROBE]
    if user:
        cmd += ["-u", user, "-p", password]
    if repeat > 1:
        cmd += ["-r", str(repeat)]
    env = dict(os.environ)
    if ca:
        env["KV_PROBE_CA"] = ca
    out = subprocess.run(cmd + [endpoints] + [str(a) for a in args],
                         check=True, capture_output=True, text=True,
                         timeout=30, env=env).stdout
    return json.loads(out)


def test_one_winner_and_fenced_writes(etcd):
    ep = etcd.endpoint

    # two nodes race for a certificate's lock, each with its own lease
    a = kv(ep, "grant", 60)["lease"]
    b = kv(ep, "grant", 60)["lease"]
    assert a and b and a != b
    r1 = kv(ep, "put", "/acme/locks/x", "node-a", "absent", "lease=%d" % a)
    r2 = kv(ep, "put", "/acme/locks/x", "node-b", "absent", "lease=%d" % b)
    assert r1["status"] == "ok"
    assert r2["status"] == "conflict", r2
    assert r2["pairs"][0]["value"] == "node-a" and r2["pairs"][0]["lease"] == a

    # the holder's writes pass the fence; the other's do not
    assert kv(ep, "put", "/acme/certs/x", "C1",
              "fence=/acme/locks/x:%d" % a)["status"] == "ok"
    r = kv(ep, "put", "/acme/certs/x", "C-b", "fence=/acme/locks/x:%d" % b)
    assert r["status"] == "fenced" and "/acme/locks/x" in r["err"]

    # the holder keeps its lease alive, then loses it (a node paused past
    # its TTL looks the same): the lock is gone, and so is its fence
    assert kv(ep, "keepalive", a)["ttl"] > 0
    assert kv(ep, "revoke", a)["status"] == "ok"
    assert kv(ep, "keepalive", a)["status"] == "not found"
    assert kv(ep, "get", "/acme/locks/x")["status"] == "not found"
    r = kv(ep, "put", "/acme/certs/x", "C-late", "fence=/acme/locks/x:%d" % a)
    assert r["status"] == "fenced"
    got = kv(ep, "get", "/acme/certs/x")
    assert got["status"] == "ok" and got["pairs"][0]["value"] == "C1"

    # a write at a stale revision is refused with the key as it is now
    rev = got["pairs"][0]["mod_revision"]
    assert kv(ep, "put", "/acme/certs/x", "C2", "rev=%d" % rev)["status"] == "ok"
    r = kv(ep, "put", "/acme/certs/x", "C3", "rev=%d" % rev)
    assert r["status"] == "conflict" and r["pairs"][0]["value"] == "C2"


def test_list_from_revision_and_failover(etcd):
    ep = etcd.endpoint
    for i in range(3):
        kv(ep, "put", "/acme/certs/c%d" % i, "v%d" % i)
    kv(ep, "put", "/other/k", "v")
    every = kv(ep, "list", "/acme/certs/")
    assert [p["key"] for p in every["pairs"]] == [
        "/acme/certs/c0", "/acme/certs/c1", "/acme/certs/c2"]
    kv(ep, "put", "/acme/certs/c1", "v1b")
    # only what changed since the revision a node last saw
    changed = kv(ep, "list", "/acme/certs/", every["revision"] + 1)
    assert [(p["key"], p["value"]) for p in changed["pairs"]] == [
        ("/acme/certs/c1", "v1b")]

    # the first endpoint is down: the next one answers, and is kept
    r = kv(DEAD + "," + ep, "get", "/acme/certs/c0")
    assert r["status"] == "ok" and r["endpoint"] == ep
    # every endpoint down: unavailable, naming the endpoint
    r = kv(DEAD, "get", "/acme/certs/c0")
    assert r["status"] == "unavailable" and "127.0.0.1:1" in r["err"]


def test_authentication(etcd):
    etcd.etcdctl("user", "add", "root:rootpw")
    etcd.etcdctl("user", "add", "acme:s3cret")
    etcd.etcdctl("role", "add", "acme")
    etcd.etcdctl("role", "grant-permission", "acme", "--prefix=true",
                 "readwrite", "/acme/")
    etcd.etcdctl("user", "grant-role", "acme", "acme")
    etcd.etcdctl("auth", "enable")
    ep = etcd.endpoint

    r = kv(ep, "put", "/acme/a", "v", user="acme", password="s3cret")
    assert r["status"] == "ok", r
    assert kv(ep, "get", "/acme/a", user="acme",
              password="s3cret")["pairs"][0]["value"] == "v"
    # outside its prefix, without a user, or with a wrong password: denied
    assert kv(ep, "put", "/other", "v", user="acme",
              password="s3cret")["status"] == "denied"
    assert kv(ep, "get", "/acme/a")["status"] == "denied"
    r = kv(ep, "get", "/acme/a", user="acme", password="wrong")
    assert r["status"] == "denied" and "wrong" not in r["err"]

    # refused credentials are not tried again at once (each try is a bcrypt
    # check and log lines in etcd): three requests, one authentication
    def refusals():
        with open(etcd.log_path, errors="replace") as f:
            return f.read().count("invalid password for user acme")
    before = refusals()
    r = kv(ep, "get", "/acme/a", user="acme", password="wrong", repeat=3)
    assert r["status"] == "denied" and "authentication failed" in r["err"], r
    assert refusals() == before + 1


def test_tls_endpoint(workdir):
    e = Etcd(workdir, tls=True).start()
    try:
        r = kv(e.endpoint, "put", "/acme/t", "v", ca=e.ca_file)
        assert r["status"] == "ok", r
        # without the CA the endpoint is not trusted: nothing is sent
        r = kv(e.endpoint, "get", "/acme/t", ca="/etc/ssl/certs/ca-certificates.crt")
        assert r["status"] == "unavailable" and "verif" in r["err"].lower(), r
    finally:
        e.stop()


FLEET_PROBE = os.path.join(HERE, "..", "..", "build", "fleet_probe")


def test_fleet_nodes_lifecycle(etcd, workdir):
    """Two nodes (common/io/acme_fleet_node.c) through one order against a
    real etcd: one locks, the other waits and names the holder; a shared
    challenge's barrier ends once the other node mirrored it, and its
    removal reaches the mirror; the record published under the lock reaches
    the other node, which installs it instead of ordering; a write after
    the lock vanished is fenced; no private key in clear in the store."""
    key = os.path.join(workdir, "seal.key")
    with open(key, "w") as f:
        f.write("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")
    with open(key + ".other", "w") as f:
        f.write("YW5vdGhlci1mbGVldC1rZXktMDEyMzQ1Njc4OWFiYzE=\n")
    chain = os.path.join(workdir, "chain.pem")
    pkey = os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", pkey, "-out", chain, "-days", "2",
                    "-subj", "/CN=www.example"], check=True,
                   capture_output=True, timeout=30)
    out = subprocess.run([FLEET_PROBE, etcd.endpoint, key, chain, pkey],
                         check=True, capture_output=True, text=True,
                         timeout=60).stdout
    s = {}
    for line in out.splitlines():
        o = json.loads(line)
        s[o["step"]] = o
    assert "end" in s, out

    assert s["sync-a"]["reachable"] and s["sync-b"]["nodes"] == 2, out
    assert s["claim-a"]["action"] == "order", out
    assert s["claim-b"]["action"] == "wait", out
    assert s["claim-b"]["holder"] == "node-a", out

    assert s["put"]["rc"] == 0 and s["put"]["missing"] == 0, out
    chal = s["mirror-b"]["chals"]
    assert [c["token"] for c in chal] == ["tok-0123456789abcdef_ABCDEF"], out
    assert chal[0]["node"] == "node-a" and chal[0]["type"] == "http-01"
    assert chal[0]["key_authz"].endswith(".thumb")
    assert s["gone-b"]["chals"] == [], out
    assert s["gone-b"]["gone"] == ["tok-0123456789abcdef_ABCDEF"], out

    assert s["publish-a"]["status"] == "ok", out
    recs = s["records-b"]["certs"]
    assert len(recs) == 1 and recs[0]["bundle"] and recs[0]["err"] == "", out
    assert recs[0]["node"] == "node-a"
    assert s["claim-b-again"]["action"] == "install", out
    assert s["claim-b-again"]["bundle"], out
    assert s["claim-b-again"]["holder"] == "node-a", out

    assert s["claim-a-renew"]["action"] == "order", out
    assert s["publish-late"]["status"] == "fenced", out
    assert "another node may have ordered" in s["publish-late"]["err"]

    # fleet-wide backoff: the failed order's lock is held until the retry
    assert s["claim-a-fail"]["action"] == "order", out
    assert s["claim-b-hold"]["action"] == "wait", out
    assert s["claim-b-hold"]["holder"] == "node-a", out
    assert s["claim-a-retry"]["action"] == "order", out
    assert s["claim-b-after"]["action"] == "order", out

    # a node with another key file: no install, no order over the record
    assert s["claim-c-otherkey"]["action"] == "idle", out
    assert "sealed with another key file" in s["claim-c-otherkey"]["err"], out
    assert not s["claim-c-otherkey"]["bundle"]

    status = json.loads(s["status-a"]["json"])
    assert status["node"] == "node-a" and status["reachable"] is True
    assert status["locks"] == {}, status

    # the store holds the record, but no key material in clear
    dump = etcd.etcdctl("get", "--prefix", "/acme/")
    assert "/acme/certs/www.example_ecdsa-256" in dump
    assert "BEGIN CERTIFICATE" in dump
    assert "PRIVATE KEY" not in dump
    with open(pkey) as f:
        body = "".join(l for l in f if not l.startswith("-----"))
    assert body.strip().splitlines()[0] not in dump

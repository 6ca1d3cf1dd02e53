"""nginx-acme's "preferred_chain NAME" (Apache: AcmePreferredChain): pebble
with PEBBLE_ALTERNATE_ROOTS=1 offers its default chain (root 0) and one
alternate (root 1) through "Link: <...>;rel=\"alternate\"" on the
certificate URL; the chain whose top certificate NAME issued is served, the
default chain when none is (the engine's unit tests cover the rest:
engine_preferred_chain*)."""

import os

import pytest
from cryptography import x509

from servers import HTTPS_PORT
from tlsutil import served_chain_pem, wait_acme_cert


def issuer_cn(cert):
    return [a.value for a in
            cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]


def subject_cn(pem):
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value


@pytest.mark.parametrize("prefer", ["alternate", "nothing"])
def test_preferred_chain(server, pebble_factory, state_dir, workdir, prefer):
    pebble = pebble_factory(extra_env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    roots = [pebble.alternate_root_pem(n) for n in (0, 1)]
    names = [subject_cn(r) for r in roots]
    assert names[0] != names[1]
    both = os.path.join(workdir, "roots.pem")
    with open(both, "w") as f:
        f.write("".join(roots))

    want = names[1] if prefer == "alternate" else names[0]
    name = names[1] if prefer == "alternate" else "no such root"
    server.start_managed(pebble, state_dir,
                         issuer={"preferred_chain": '"%s"' % name})
    wait_acme_cert(HTTPS_PORT, "a.example.test", both, 60,
                   proc_alive=server.running)
    chain = served_chain_pem(HTTPS_PORT, "a.example.test")
    assert len(chain) >= 2, chain
    top = x509.load_pem_x509_certificate(chain[-1].encode())
    assert issuer_cn(top) == [want]

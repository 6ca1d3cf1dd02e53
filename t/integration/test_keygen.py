"""nginx and Apache: the certificate key (RSA-4096 here) and the CSR's
signature are made in a helper thread "acme-keygen" at the lowest
scheduling priority (SCHED_IDLE), never on nginx's event loop nor at the
priority of the threads that serve traffic (issue 9, common/io/acme_keygen.h);
every other thread of the server keeps its own priority."""

import os
import time

from servers import HTTPS_PORT
from tlsutil import key_desc, wait_acme_cert

SCHED_OTHER, SCHED_IDLE = 0, 5
ISSUE_TIMEOUT = 120


def _threads(pgid):
    """[(pid, tid, comm, nice, policy)] of every thread of the processes
    of process group pgid (the server: started in a session of its own)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
            if int(st[st.rindex(")") + 2:].split()[2]) != pgid:
                continue
            tids = os.listdir("/proc/%s/task" % pid)
        except (OSError, ValueError):
            continue
        for tid in tids:
            try:
                with open("/proc/%s/task/%s/stat" % (pid, tid)) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            f = st[st.rindex(")") + 2:].split()
            # fields 19 (nice) and 41 (policy) of proc(5)
            out.append((int(pid), int(tid), comm, int(f[16]), int(f[38])))
    return out


def test_keygen_lowest_priority(server, pebble, root_file, state_dir):
    server.start_managed(pebble, state_dir, names=["a.example.test"], cert_args="key=rsa:4096")
    pgid = server.main_pid
    keygen, others = {}, {}
    deadline = time.monotonic() + ISSUE_TIMEOUT
    # until the key exists (its generation takes a while: the thread is
    # seen), then the order goes on
    while time.monotonic() < deadline and server.running():
        threads = _threads(pgid)
        for pid, tid, comm, nice, policy in threads:
            # the last look at each (a helper names itself, then lowers
            # its priority: a look in between sees it on its way)
            if comm == "acme-keygen":
                keygen[tid] = (nice, policy)
            else:
                others[tid] = (comm, nice, policy)
        if keygen and not any(t[2] == "acme-keygen" for t in threads):
            break
        if os.path.exists(os.path.join(state_dir, "certs", "a.example.test_rsa-4096",
                                       "bundle.pem")):
            break
        time.sleep(0.002)
    assert keygen, "no acme-keygen thread seen while the RSA-4096 key was made"
    others = {tid: v for tid, v in others.items() if tid not in keygen}
    assert all(policy == SCHED_IDLE for _, policy in keygen.values()), keygen
    # the thread that waited for it (nginx: a thread of the pool, which may
    # serve "aio threads" next; Apache: the job's thread) keeps its priority:
    # the nice value the server started with (this process's: a suite run
    # under nice(1) passes it on)
    base = os.nice(0)
    assert all(policy == SCHED_OTHER and nice == base
               for _, nice, policy in others.values()), (base, others)

    # the key and the CSR made there are the certificate's
    cert = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert key_desc(cert) == "rsa:4096"
    assert not server.problems(), server.problems()

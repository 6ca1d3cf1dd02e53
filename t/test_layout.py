"""The layout rule of common/ (docs/design.md "Layout"): t/check_layout.sh,
which every build runs (Makefile: build/layout.ok), holds on this tree and
names each kind of violation it exists for; and the objects of common/core/
(as `make` built them) call no blocking function of libc or OpenSSL."""

import glob
import os
import shutil
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHECK = os.path.join(REPO, "t", "check_layout.sh")
CORE_OBJ = os.path.join(REPO, "build", "common", "core")

# files, sockets, waits, processes, threads, name resolution: common/io/ only
BLOCKING = set("""
    open open64 openat openat64 creat read pread pread64 write pwrite pwrite64
    readv writev fopen fopen64 fdopen freopen fread fwrite fgets fputs fflush
    fclose close fsync fdatasync sync rename renameat link linkat unlink
    unlinkat mkdir mkdirat rmdir stat stat64 fstat fstat64 lstat lstat64
    fstatat fstatat64 statvfs fstatvfs opendir fdopendir readdir chmod fchmod
    chown fchown ftruncate socket connect accept accept4 bind listen send
    sendto sendmsg recv recvfrom recvmsg shutdown poll ppoll select pselect
    epoll_wait sleep usleep nanosleep clock_nanosleep fork vfork clone execve
    execv execvp execvpe posix_spawn posix_spawnp waitpid wait wait4 system
    popen getaddrinfo gethostbyname pthread_create pthread_join
    pthread_mutex_lock pthread_cond_wait pthread_cond_timedwait
    BIO_new_file BIO_new_fp BIO_new_fd BIO_new_socket BIO_new_connect
    BIO_do_connect SSL_connect SSL_do_handshake SSL_read SSL_write
""".split())


def _check(common):
    r = subprocess.run([CHECK, common], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stderr


def test_tree_holds_the_rule():
    rc, err = _check(os.path.join(REPO, "common"))
    assert (rc, err) == (0, "")


def test_core_and_io_are_not_empty():
    for d in ("core", "io"):
        srcs = [f for f in os.listdir(os.path.join(REPO, "common", d))
                if f.endswith(".c")]
        assert srcs, "common/%s has no source" % d


@pytest.mark.parametrize("where,name,text,expect", [
    # a core file including an io header, also through a path
    ("core", "acme_bad.c", '#include "acme_store.h"\n', '"acme_store.h"'),
    ("core", "acme_bad.h", '# include "../io/acme_transport.h"\n',
     "../io/acme_transport.h"),
    # blocking system interfaces in core
    ("core", "acme_bad.c", "#include <sys/socket.h>\n", "<sys/socket.h>"),
    ("core", "acme_bad.c", "#include <unistd.h>\n", "<unistd.h>"),
    # a source of common/ outside core/ and io/
    (".", "acme_flat.c", "int x;\n", "acme_flat.c: common/ sources go"),
], ids=["io-header", "io-header-by-path", "socket", "unistd", "flat-file"])
def test_violations_are_named(tmp_path, where, name, text, expect):
    common = str(tmp_path / "common")
    shutil.copytree(os.path.join(REPO, "common"), common)
    with open(os.path.join(common, where, name), "w") as f:
        f.write(text)
    rc, err = _check(common)
    assert rc == 1
    assert expect in err, err
    # the rest of the tree is fine: only the planted file is named
    assert all(name in line for line in err.splitlines()), err


def test_io_may_include_core_and_system_headers(tmp_path):
    common = str(tmp_path / "common")
    shutil.copytree(os.path.join(REPO, "common"), common)
    with open(os.path.join(common, "io", "acme_ok.c"), "w") as f:
        f.write('#include <poll.h>\n#include "acme_util.h"\n'
                '#include "acme_store.h"\n')
    assert _check(common) == (0, "")


def test_core_objects_call_nothing_blocking():
    objs = sorted(glob.glob(os.path.join(CORE_OBJ, "*.o")))
    assert objs, "no objects in %s: run ./build.sh build" % CORE_OBJ
    srcs = glob.glob(os.path.join(REPO, "common", "core", "*.c"))
    assert len(objs) >= len(srcs), "stale %s: run ./build.sh build" % CORE_OBJ
    r = subprocess.run(["nm", "-u"] + objs, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    found, obj = [], None
    for line in r.stdout.splitlines():
        if line.endswith(".o:"):
            obj = os.path.basename(line[:-1])
            continue
        parts = line.split()
        if parts and parts[-1].split("@")[0] in BLOCKING:
            found.append("%s: %s" % (obj, parts[-1]))
    assert not found, "blocking calls in common/core/: %s" % ", ".join(found)
    # the list matches nm's output at all: io/ does call some of them
    r = subprocess.run(["nm", "-u"] + glob.glob(
        os.path.join(REPO, "build", "common", "io", "*.o")),
        capture_output=True, text=True, timeout=60)
    io_calls = {l.split()[-1].split("@")[0] for l in r.stdout.splitlines()
                if l.strip() and not l.endswith(".o:")}
    assert {"openat", "poll", "socket", "fsync"} <= io_calls & BLOCKING

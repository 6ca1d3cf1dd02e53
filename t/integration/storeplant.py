"""What a compromised worker user (www-data) can plant in the store, and
how to check that root code did not act on it (issue 7: root never follows
a symlink or a hard link below the state path).

    bundle_pem(name, cn)        key + self-signed certificate PEM (a bundle)
    root_only_file(path, text)  0600 root:root file (a "root-only key")
    as_worker(path)             lchown to www-data (what the worker would own)
    fingerprint(path)           owner, mode, link count and content of a file
                                or a directory tree, to compare before/after
    read_only_cmd(cmd, path)    cmd run in a private mount namespace in which
                                path is a read-only bind mount of itself
    remountable_cmd(cmd, path)  the same, but path stays writable until
                                remount(pid, path, ro) switches it while the
                                server runs
    tmpfs_cmd(cmd, path, size)  cmd with a small tmpfs mounted on path (in
                                its own mount namespace); in_ns(pid, path)
                                reaches it, fill(path) fills it,
                                remount_fs(pid, path, ro) makes the file
                                system itself read-only (EROFS) or writable
    stored_serial(store, id)    serial of certs/<id>/bundle.pem, or None
    check_memory_only(...)      an issued certificate the store refused is
                                served, shown and logged as such
"""

import datetime
import errno
import os
import pwd
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

WORKER = pwd.getpwnam("www-data")


def bundle_pem(name, cn, days=30):
    """A P-256 key and a self-signed certificate for name with subject CN cn,
    as one PEM text (the layout of bundle.pem: key first)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
            + cert.public_bytes(serialization.Encoding.PEM).decode())


def subject_cn(cert):
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


def root_only_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


def as_worker(path):
    os.lchown(path, WORKER.pw_uid, WORKER.pw_gid)
    return path


def worker_dir(path):
    """A directory as the worker user has it in the store (0700 www-data)."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o700)
    return as_worker(path)


def fingerprint(path):
    """Owner, group, mode, link count and content of path (recursively for
    a directory): equal before and after means nobody touched it."""
    st = os.lstat(path)
    out = [(path, st.st_uid, st.st_gid, oct(st.st_mode), st.st_nlink)]
    if os.path.isdir(path) and not os.path.islink(path):
        for n in sorted(os.listdir(path)):
            out.extend(fingerprint(os.path.join(path, n)))
    elif os.path.isfile(path):
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def read_only_cmd(cmd, path):
    """cmd in a private mount namespace where path is mounted read-only (the
    namespace goes away with the process; nothing changes outside it).  The
    command is exec'd, so its pid is the Popen pid."""
    script = ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" '
              '&& exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "--",
            "sh", "-c", script, path] + list(cmd)


def remountable_cmd(cmd, path):
    """cmd in a private mount namespace where path is a bind mount of itself,
    writable until remount() makes it read-only (exec'd: the Popen pid is
    the server's, and nsenter -t pid reaches its namespace)."""
    script = 'mount --bind "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "--",
            "sh", "-c", script, path] + list(cmd)


def remount(pid, path, ro):
    """Makes the bind mount of path in pid's mount namespace (see
    remountable_cmd) read-only or writable again, while pid runs."""
    subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "mount", "-o",
                    "remount,bind," + ("ro" if ro else "rw"), path],
                   check=True, timeout=30)


def tmpfs_cmd(cmd, path, size="256k"):
    """cmd in a private mount namespace where path is a tmpfs of size (a
    small file system to fill); exec'd as remountable_cmd.  The test sees
    it through in_ns(pid, path)."""
    script = 'mount -t tmpfs -o size=%s,mode=0700 tmpfs "$0" && exec "$@"' % size
    return ["unshare", "-m", "--propagation", "private", "--",
            "sh", "-c", script, path] + list(cmd)


def remount_fs(pid, path, ro):
    """The file system mounted on path in pid's mount namespace (the tmpfs
    of tmpfs_cmd) remounted read-only or read-write while pid runs."""
    subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "mount", "-o",
                    "remount," + ("ro" if ro else "rw"), path],
                   check=True, timeout=30)


def in_ns(pid, path):
    """path as pid's mount namespace has it (/proc/<pid>/root/...)."""
    return "/proc/%d/root%s" % (pid, os.path.abspath(path))


def fill(path):
    """Writes path until the file system is full (ENOSPC); its size."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                n += f.write(b"\0" * 4096)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return n


def stored_serial(store, cert_id):
    """The serial of store's certs/<cert_id>/bundle.pem (None: no bundle)."""
    from tlsutil import load_pem_certs
    try:
        with open(os.path.join(store, "certs", cert_id, "bundle.pem")) as f:
            return load_pem_certs(f.read())[0].serial_number
    except (OSError, IndexError):
        return None


def check_memory_only(server, port, name, root, cert_id, serial, text, log_at,
                      handshakes=20):
    """The certificate serial, which the store refused with the error text
    (strerror), is served for name by every worker / child, the status
    shows it valid with a store_error saying it is not stored and why, and
    the error log (from log_at) says "served from memory only" and why at
    error level."""
    from tlsutil import same_serial, served_cert
    for _ in range(handshakes):
        assert served_cert(port, name, cafile=root).serial_number == serial
    c = server.status_cert(cert_id)
    assert c["state"] == "valid", c
    assert same_serial(c["serial"], serial), c
    assert "not stored" in (c["store_error"] or ""), c
    assert text.lower() in c["store_error"].lower(), c
    log = server.error_log()[log_at:]
    line = [ln for ln in log.splitlines()
            if "served from memory only" in ln and cert_id in ln]
    level = "[error]" if server.kind == "nginx" else ":error]"
    assert line and level in line[0] and text in line[0], log
    return c

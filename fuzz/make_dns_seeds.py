#!/usr/bin/python3
"""Writes the seeds of fuzz_dns (DNS responses to the requests that
fuzz_dns.c builds; see its header for the control byte).  `make fuzz-seeds`
runs it; the output is committed.

    make_dns_seeds.py DIR
"""
import os
import struct
import sys

QID, UID = 0x1234, 0x4242
TXT_NAME = "_acme-challenge.a.example.test"


def name(n):
    out = b""
    for label in n.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def hdr(ident, flags, qd, an, ns, ar):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def rr(owner, rtype, rdata, ttl=60, cls=1):
    o = owner if isinstance(owner, bytes) else name(owner)
    return o + struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata


def txt(*strings):
    return b"".join(bytes([len(s)]) + s.encode() for s in strings)


def soa(mname, rname):
    return name(mname) + name(rname) + struct.pack(">IIIII", 1, 3600, 600, 86400, 60)


def ptr(off):
    return struct.pack(">H", 0xC000 | off)


def tsig_unsigned(error, ident):
    """A TSIG error response's record: no MAC (BADSIG / BADKEY)."""
    rdata = (name("hmac-sha256") + struct.pack(">HI", 0, 1800000000)
             + struct.pack(">HH", 300, 0) + struct.pack(">HHH", ident, error, 0))
    return rr("acme-key", 250, rdata, ttl=0, cls=255)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    q_txt = name(TXT_NAME) + struct.pack(">HH", 16, 1)
    q_soa = name(TXT_NAME) + struct.pack(">HH", 6, 1)
    q_ns = name("example.test") + struct.pack(">HH", 2, 1)
    q_upd = name("example.test") + struct.pack(">HH", 6, 1)
    seeds = {
        # TXT: two records, the second of two strings, owner compressed
        "txt-two-records": b"0" + hdr(QID, 0x8400, 1, 2, 0, 0) + q_txt
        + rr(ptr(12), 16, txt("value-one")) + rr(ptr(12), 16, txt("part-", "two")),
        # TXT through a CNAME
        "txt-cname": b"0" + hdr(QID, 0x8400, 1, 2, 0, 0) + q_txt
        + rr(ptr(12), 5, name("x.example.test"))
        + rr("x.example.test", 16, txt("via-cname")),
        # NXDOMAIN with the zone's SOA in authority
        "txt-nxdomain": b"0" + hdr(QID, 0x8403, 1, 0, 1, 0) + q_txt
        + rr("example.test", 6, soa("ns1.example.test", "hostmaster.example.test")),
        "txt-truncated": b"0" + hdr(QID, 0x8600, 1, 0, 0, 0) + q_txt,
        # SOA: answer in authority, names compressed against the question
        "soa-authority": b"1" + hdr(QID, 0x8180, 1, 0, 1, 0) + q_soa
        + rr(ptr(12 + 1 + 15 + 1 + 1), 6, ptr(12 + 1 + 15 + 1 + 1) + ptr(12)
             + struct.pack(">IIIII", 1, 2, 3, 4, 5)),
        "soa-answer": b"1" + hdr(QID, 0x8180, 1, 1, 0, 0) + q_soa
        + rr("example.test", 6, soa("ns1.example.test", "hostmaster.example.test")),
        "ns-two": b"2" + hdr(QID, 0x8400, 1, 2, 0, 0) + q_ns
        + rr(ptr(12), 2, name("ns1.example.test")) + rr(ptr(12), 2, b"\3ns2" + ptr(12)),
        # UPDATE answers, signed by the harness (control byte '7')
        "update-noerror-signed": b"7" + hdr(UID, 0xA800, 1, 0, 0, 0) + q_upd,
        "update-notauth-signed": b"7" + hdr(UID, 0xA809, 1, 0, 0, 0) + q_upd,
        "update-refused-signed": b"7" + hdr(UID, 0xA805, 1, 0, 0, 0) + q_upd,
        # TSIG errors come unsigned
        "update-badsig": b"3" + hdr(UID, 0xA809, 1, 0, 0, 1) + q_upd + tsig_unsigned(16, UID),
        "update-badkey": b"3" + hdr(UID, 0xA809, 1, 0, 0, 1) + q_upd + tsig_unsigned(17, UID),
        "update-unsigned": b"3" + hdr(UID, 0xA800, 1, 0, 0, 0) + q_upd,
    }
    for k, v in seeds.items():
        with open(os.path.join(out, "seed-" + k), "wb") as f:
            f.write(v)


if __name__ == "__main__":
    main()

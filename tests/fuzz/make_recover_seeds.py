#!/usr/bin/env python3
"""Write seed inputs for fuzz_recover into tests/fuzz/corpus/recover/.

An input is a list of chunks: op u8, len u16 (big-endian), payload. Op 0x00
starts the next journal segment, 0x01 writes the payload unframed (garbage),
any other op is a record of that type, framed by the target with a valid
CRC. The target's definitions.json has queues 1 (q1, classic, priorities),
2 (qd, deduplicating, 4 keys), 3 (qq, quorum), a deduplicating direct
exchange xd and an exchange xh whose type holds messages; their holder ids
(the owners of 'K' records and of held 'P' records) are computed here as
src/broker/exchange.c's wr_exchange_holder_id does. Run by hand when the
seeds should change; the seeds themselves are committed (with crash-*
files: inputs the fuzzer found, kept as they were).
"""
import os
import struct
import sys

M64 = (1 << 64) - 1


def holder_id(vhost, name):
    h = 0xCBF29CE484222325
    for c in vhost.encode():
        h = ((h ^ c) * 0x100000001B3) & M64
    for i in range(8):
        h = ((h ^ ((len(vhost.encode()) >> (8 * i)) & 0xFF)) * 0x100000001B3) & M64
    for c in name.encode():
        h = ((h ^ c) * 0x100000001B3) & M64
    h ^= h >> 31
    h = (h * 0x7FB5D329728EA185) & M64
    h ^= h >> 27
    return h | (1 << 63)


Q1, QD, QQ, QS, QK = 1, 2, 3, 4, 5
XD = holder_id("/", "xd")
XH = holder_id("/", "xh")


def chunk(op, payload=b""):
    return struct.pack(">BH", op, len(payload)) + payload


def rec(t, payload):
    return chunk(ord(t), payload)


def props(persistent=True, priority=None, expiration=None):
    flags, body = 0, b""
    if persistent:
        flags |= 0x1000
        body += b"\x02"
    if priority is not None:
        flags |= 0x0800
        body += bytes([priority])
    if expiration is not None:
        flags |= 0x0100
        body += bytes([len(expiration)]) + expiration.encode()
    return struct.pack(">H", flags) + body


def P(mid, qids, body=b"job", x="", rk="rk", pr=None, wall=1700000000000):
    pr = props() if pr is None else pr
    return rec("P", struct.pack(">QQH", mid, wall, len(qids))
               + b"".join(struct.pack(">Q", q) for q in qids)
               + bytes([len(x)]) + x.encode() + bytes([len(rk)]) + rk.encode()
               + struct.pack(">I", len(pr)) + pr + struct.pack(">I", len(body)) + body)


def A(mid, qid):
    return rec("A", struct.pack(">QQ", mid, qid))


def R(mid, qid, deliveries):
    return rec("R", struct.pack(">QQH", mid, qid, deliveries))


def K(mid, owner, key, flags=0, expires=0):
    return rec("K", struct.pack(">BQQQ", flags, mid, owner, expires) + key)


def headers(**kv):
    """Properties with only a headers table (string values; True: a bool)."""
    t = b""
    for k, v in kv.items():
        k = k.replace("_", "-").encode()
        if v is True:
            t += bytes([len(k)]) + k + b"t\x01"
        else:
            t += bytes([len(k)]) + k + b"S" + struct.pack(">I", len(v)) + v.encode()
    return struct.pack(">HI", 0x2000, len(t)) + t


def S(qid, off, body=b"s" * 300, x="", rk="rk", pr=b"", wall=1700000000000):
    return rec("S", struct.pack(">QQQ", qid, off, wall)
               + bytes([len(x)]) + x.encode() + bytes([len(rk)]) + rk.encode()
               + struct.pack(">I", len(pr)) + pr + struct.pack(">I", len(body)) + body)


def T(qid, first):
    return rec("T", struct.pack(">QQ", qid, first))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "recover")
    os.makedirs(out, exist_ok=True)
    seeds = {
        # what the store writes
        "valid-publish-ack-requeue": P(1, [Q1]) + P(2, [Q1, QQ], pr=props(priority=2))
        + A(1, Q1) + R(2, Q1, 3) + R(2, QQ, 1),
        "valid-keys": K(1, QD, b"order-1") + P(1, [QD]) + K(2, XD, b"order-2") + P(2, [Q1])
        + K(0, QD, b"copied", flags=1) + K(3, QD, b"ttl", expires=(1 << 62)) + P(3, [QD]),
        "valid-held": P(1, [XH], x="xh") + P(2, [XH], x="xh") + A(2, XH),
        "valid-transient-quorum": P(1, [QQ], pr=b""),
        "valid-expiration": P(1, [Q1], pr=props(expiration="60000")) + P(2, [Q1], pr=props(expiration="junk")),
        "compaction-copy": P(1, [Q1, QD]) + A(1, Q1) + chunk(0) + P(1, [QD]) + K(0, QD, b"k", flags=1),
        "key-eviction": b"".join(K(i, QD, b"key-%d" % i) + P(i, [QD]) for i in range(1, 9)),
        "key-replaced": K(1, QD, b"same") + P(1, [QD]) + K(2, QD, b"same") + P(2, [QD]),
        "two-segments": P(1, [Q1]) + chunk(0) + A(1, Q1) + P(2, [Q1]),
        # streams: segments rolling, retention, compaction, tombstones
        "stream-valid": b"".join(S(QS, i) for i in range(40)) + T(QS, 13),
        "stream-two-segments": b"".join(S(QS, i) for i in range(20)) + chunk(0)
        + b"".join(S(QS, i) for i in range(20, 30)) + P(1, [Q1]),
        "stream-compacted": b"".join(S(QK, i, pr=headers(k="key%d" % (i % 3))) for i in range(40))
        + S(QK, 40, body=b"", pr=headers(k="key1", x_tombstone=True), wall=1)
        + b"".join(S(QK, i, pr=headers(k="key2")) for i in range(41, 60)),
        "stream-no-key-header": b"".join(S(QK, i, pr=props()) for i in range(30)),
        "stream-offsets-backwards": S(QS, 5) + S(QS, 3) + S(QS, 6) + S(QS, 6),
        "stream-offset-jump": S(QS, 0) + S(QS, 1 << 40) + S(QS, 1) + S(QS, (1 << 64) - 1),
        "stream-unknown-and-wrong": S(99, 0) + S(Q1, 0) + T(99, 5) + T(Q1, 1) + S(QS, 0),
        "stream-truncated": rec("S", struct.pack(">QQ", QS, 0)) + rec("T", b"\x00" * 8)
        + rec("S", struct.pack(">QQQ", QS, 1, 0) + b"\x05ab") + S(QS, 2),
        "stream-huge-lengths": rec("S", struct.pack(">QQQ", QS, 0, 0) + b"\x00\x00"
                                   + struct.pack(">I", 0xFFFFFFFF)) + S(QS, 1),
        "stream-truncate-past-end": S(QS, 0) + S(QS, 1) + T(QS, 1000) + S(QS, 2),
        "stream-garbage-between": S(QS, 0) + chunk(1, b"\x57\x4a\x52\x4c" + b"\xff" * 20) + S(QS, 1),
        # garbage, truncation, oversize
        "garbage-then-good": chunk(1, b"\xde\xad\xbe\xef" * 8) + P(1, [Q1]) + chunk(1, b"\x57\x4a\x52")
        + P(2, [Q1]),
        "torn-tail": P(1, [Q1]) + chunk(1, b"\x57\x4a\x52\x4c\x00\x00\x01\x00"),
        "k-truncated": rec("K", b"\x00" * 24) + rec("K", b"") + K(1, QD, b"ok") + P(1, [QD]),
        "k-key-too-long": rec("K", struct.pack(">BQQQ", 0, 1, QD, 0) + b"x" * 300) + P(1, [QD]),
        "k-unknown-owner": K(1, 999, b"a") + K(1, (1 << 63) | 12345, b"b") + P(1, [QD]),
        "k-without-p": K(7, QD, b"orphan") + P(1, [QD]),
        "k-expired": K(1, QD, b"old", expires=1) + P(1, [QD]) + K(2, QD, b"far", expires=M64) + P(2, [QD]),
        "k-empty-key": K(1, QD, b"") + P(1, [QD]),
        "p-queue-count-past-end": rec("P", struct.pack(">QQH", 1, 0, 60000) + b"\x00" * 16),
        "p-lengths-past-end": rec("P", struct.pack(">QQH", 1, 0, 1) + struct.pack(">Q", Q1)
                                  + b"\x00\x00" + struct.pack(">I", 0xFFFFFFFF)),
        "p-huge-body-length": rec("P", struct.pack(">QQH", 1, 0, 1) + struct.pack(">Q", Q1)
                                  + b"\x00\x00" + struct.pack(">I", 0) + struct.pack(">I", 0xFFFFFFF0)),
        "p-same-queue-twice": P(1, [Q1, Q1]) + A(1, Q1),
        "p-unknown-queue": P(1, [42, 0, Q1]) + A(1, 0) + A(1, 0),
        "p-bad-props": P(1, [Q1], pr=b"\xff\xff\x01") + P(2, [Q1], pr=b"\x10"),
        "p-future-wall": P(1, [Q1], wall=M64) + P(2, [Q1], wall=0),
        "p-duplicate-id": P(5, [Q1]) + P(5, [QD, QQ]) + P(5, []),
        "p-held-by-dedup-exchange": P(1, [XD]),
        # store id 0 (never written: ids start at 1) and a transient message
        # named for a classic queue (only quorum queues journal those): a
        # queue would never report their removal, so compaction read freed
        # messages (found by fuzz_recover; crash-p-id-zero-purged is the
        # fuzzer's reproducer, kept by hand)
        "p-id-zero": K(0, QD, b"zero") + P(0, [QD]) + P(1, [Q1]),
        "p-transient-in-classic": P(1, [Q1, QQ], pr=b"") + P(2, [Q1], pr=props(persistent=False)),
        "a-r-short": rec("A", b"\x00" * 15) + rec("R", b"\x00" * 16) + P(1, [Q1]) + R(1, Q1, 0) + A(1, 99),
        "zero-length": rec("P", b"") + rec("A", b"") + rec("R", b"") + rec("K", b"") + rec("Z", b""),
        "unknown-types": rec("Z", b"hello") + rec("\xff", b"") + chunk(2, b"x"),
        "huge-lengths": chunk(1, struct.pack(">III", 0x574A524C, 0xFFFFFFFF, 0) + b"P") + P(1, [Q1]),
        "empty-segments": chunk(0) + chunk(0) + P(1, [Q1]),
        "header-cut": b"\x50\x00",
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

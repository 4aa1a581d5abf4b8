#!/usr/bin/env python3
"""Write seed inputs for fuzz_frame into tests/fuzz/corpus/frame/.

Each seed is one byte selecting frame_max, then a stream of frames as a
client would send them. Run by hand when the seeds should change; the
seeds themselves are committed.
"""
import os
import struct
import sys

END = b"\xce"


def frame(t, ch, payload):
    return struct.pack(">BHI", t, ch, len(payload)) + payload + END


def method(cid, mid, args=b""):
    return frame(1, 0 if cid == 10 else 1, struct.pack(">HH", cid, mid) + args)


def sstr(s):
    s = s.encode() if isinstance(s, str) else s
    return bytes([len(s)]) + s


def lstr(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(s)) + s


def table(entries):
    body = b""
    for k, t, v in entries:
        body += sstr(k) + t.encode() + v
    return struct.pack(">I", len(body)) + body


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "frame")
    os.makedirs(out, exist_ok=True)
    caps = table([("publisher_confirms", "t", b"\x01"), ("consumer_cancel_notify", "t", b"\x01")])
    props = table([("product", "S", lstr("pika")), ("capabilities", "F", caps[4:] and caps)])
    seeds = {
        "handshake": b"\x01" + method(10, 11, props + sstr("PLAIN") + lstr("\0guest\0guest") + sstr("en_US"))
        + method(10, 31, struct.pack(">HIH", 2047, 131072, 60))
        + method(10, 40, sstr("/") + sstr("") + b"\x00"),
        "publish": b"\x01" + method(20, 10, sstr(""))
        + method(60, 40, struct.pack(">H", 0) + sstr("amq.direct") + sstr("rk") + b"\x01")
        + frame(2, 1, struct.pack(">HHQH", 60, 0, 5, 0x9000) + sstr("text/plain") + b"\x02")
        + frame(3, 1, b"hello"),
        "declare": b"\x00" + method(50, 10, struct.pack(">H", 0) + sstr("q") + b"\x02"
                                    + table([("x-message-ttl", "I", struct.pack(">i", 1000)),
                                             ("x-dead-letter-exchange", "S", lstr("dlx")),
                                             ("x-max-priority", "b", b"\x0a"),
                                             ("arr", "A", lstr(b"I\x00\x00\x00\x01S\x00\x00\x00\x01a"))])),
        "acks": b"\x02" + method(60, 80, struct.pack(">QB", 5, 1)) + method(60, 120, struct.pack(">QB", 9, 3))
        + frame(8, 0, b""),
        "headers": b"\x01" + frame(2, 1, struct.pack(">HHQH", 60, 0, 0, 0xFFFC) + sstr("a") + sstr("b")
                                   + table([("x-match", "S", lstr("all")), ("d", "d", struct.pack(">d", 1.5)),
                                            ("D", "D", b"\x02\x00\x00\x01\x00"), ("T", "T", struct.pack(">Q", 7)),
                                            ("V", "V", b""), ("x", "x", lstr(b"\x00\x01"))])
                                   + b"\x02\x05" + sstr("c") + sstr("r") + sstr("60000") + sstr("m")
                                   + struct.pack(">Q", 1) + sstr("t") + sstr("guest") + sstr("app") + sstr("cl")),
        "close": b"\x01" + method(20, 40, struct.pack(">H", 200) + sstr("bye") + struct.pack(">HH", 0, 0))
        + method(10, 50, struct.pack(">H", 320) + sstr("forced") + struct.pack(">HH", 0, 0)),
        "garbage": b"\x03GET / HTTP/1.1\r\n\r\n",
        "oversized": b"\x00" + struct.pack(">BHI", 3, 1, 0xFFFFFFF0) + b"x" * 16,
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

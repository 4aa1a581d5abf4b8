#!/usr/bin/env python3
"""ttl_release.py - how fast does a broker release messages whose TTL ran out?

Publishes --count small messages (16-byte bodies) with random per-message
TTLs (the `expiration` property, uniform in [--min-ttl, --max-ttl] ms) into a
fresh queue that nobody consumes, as fast as the broker takes them: raw AMQP
frames written in large batches on one connection, in confirm mode, with a
reader thread counting the acks. Then, every --interval seconds until the
queue is empty, it samples the queue's message_count (passive queue.declare
on a second connection), the broker's RSS (VmRSS in /proc/PID/status) and
its CPU time (utime+stime in /proc/PID/stat).

Because the script knows every message's TTL and when it was published, it
also knows how many messages *should* still be alive at each sample; the
difference ("held": expired but still counted) shows whether expired
messages are released when they expire or only when they reach the head of
the queue. Reported at the end: publish rate, peak / final RSS, how long
after the last message's expiry the queue became empty, the largest number
of expired messages still held, and the broker's CPU seconds while
publishing and while draining (per million messages).

Not a test: nothing is asserted. Examples:

  tests/bench/ttl_release.py --port 5672 --pid $(pgrep -n warrend)
  tests/bench/ttl_release.py --port 5673 --pid BEAM_PID --count 100000

(for RabbitMQ, BEAM_PID is the beam.smp PID that
`tools/rabbitmq-local.sh status PORT` prints).
"""
import argparse
import bisect
import json
import os
import random
import socket
import struct
import sys
import threading
import time

# the framing helpers the adversarial tests use
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from rawamqp import frame, lstr, method, sstr  # noqa: E402

EMPTY_TABLE = b"\0\0\0\0"


class Conn:
    """A blocking AMQP connection over a plain socket."""

    def __init__(self, host, port, user, password, vhost="/", timeout=30):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.s.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(0, 10, 10)
        resp = b"\0" + user.encode() + b"\0" + password.encode()
        self.s.sendall(method(0, 10, 11, EMPTY_TABLE + sstr("PLAIN") + lstr(resp)
                              + sstr("en_US")))
        args = self.expect(0, 10, 30)
        _, frame_max, _ = struct.unpack(">HIH", args[:8])
        self.frame_max = frame_max or 131072
        self.s.sendall(method(0, 10, 31, struct.pack(">HIH", 1, self.frame_max, 0)))
        self.s.sendall(method(0, 10, 40, sstr(vhost) + sstr("") + b"\0"))
        self.expect(0, 10, 41)
        self.s.sendall(method(1, 20, 10, sstr("")))
        self.expect(1, 20, 11)

    def recv_frame(self):
        while True:
            if len(self.buf) >= 7:
                t, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= size + 8:
                    payload = self.buf[7:7 + size]
                    self.buf = self.buf[size + 8:]
                    return t, ch, payload
            d = self.s.recv(1 << 16)
            if not d:
                raise ConnectionError("broker closed the connection")
            self.buf += d

    def expect(self, channel, cid, mid):
        while True:
            t, ch, p = self.recv_frame()
            if t != 1:
                continue
            c, m = struct.unpack(">HH", p[:4])
            if (c, m) in ((10, 50), (20, 40)):
                code = struct.unpack(">H", p[4:6])[0]
                text = p[7:7 + p[6]].decode(errors="replace")
                raise RuntimeError("broker closed %s: %d %s"
                                   % ("connection" if c == 10 else "channel", code, text))
            if (ch, c, m) == (channel, cid, mid):
                return p[4:]

    def call(self, cid, mid, args, reply_mid):
        self.s.sendall(method(1, cid, mid, args))
        return self.expect(1, cid, reply_mid)

    def declare(self, name, passive=False):
        """(message_count, consumer_count) of queue.declare."""
        bits = 1 if passive else 0
        a = self.call(50, 10, b"\0\0" + sstr(name) + bytes([bits]) + EMPTY_TABLE, 11)
        n = a[0]
        return struct.unpack(">II", a[1 + n:9 + n])

    def delete(self, name):
        self.call(50, 40, b"\0\0" + sstr(name) + b"\0", 41)

    def close(self):
        try:
            self.s.sendall(method(0, 10, 50, struct.pack(">H", 200) + sstr("bye")
                                  + struct.pack(">HH", 0, 0)))
            self.s.settimeout(2)
            self.expect(0, 10, 51)
        except Exception:
            pass
        self.s.close()


# ---- /proc ------------------------------------------------------------------------
def rss_kib(pid):
    if not pid:
        return None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid):
    if not pid:
        return None
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the benchmark -------------------------------------------------------------------
def publish(conn, q, ttls, batch, on_batch):
    """Publish one message per TTL in confirm mode; returns (publish times
    per batch as [(first index, monotonic time)], time the last ack came)."""
    conn.call(85, 10, b"\0", 11)                    # confirm.select
    acked = [0]
    done = threading.Event()
    errors = []
    n = len(ttls)

    def reader():
        try:
            while acked[0] < n:
                t, ch, p = conn.recv_frame()
                if t != 1:
                    continue
                c, m = struct.unpack(">HH", p[:4])
                if (c, m) == (60, 80):                   # basic.ack
                    tag, bits = struct.unpack(">QB", p[4:13])
                    acked[0] = max(acked[0], tag)
                elif (c, m) == (60, 120):                # basic.nack
                    errors.append("nack for delivery tag %d" % struct.unpack(">Q", p[4:12])[0])
                    tag, bits = struct.unpack(">QB", p[4:13])
                    acked[0] = max(acked[0], tag)
                elif (c, m) in ((10, 50), (20, 40)):
                    errors.append("broker closed: %r" % p[4:80])
                    return
        except Exception as e:                          # noqa: BLE001
            errors.append(repr(e))
        finally:
            done.set()

    threading.Thread(target=reader, daemon=True).start()
    pub_method = method(1, 60, 40, b"\0\0" + sstr("") + sstr(q) + b"\0")
    headers = {}
    stamps = []
    for start in range(0, n, batch):
        parts = []
        for i in range(start, min(start + batch, n)):
            ttl = ttls[i]
            h = headers.get(ttl)
            if h is None:
                exp = str(ttl).encode()
                # class 60, weight 0, body size 16, flags: expiration (bit 8)
                h = headers[ttl] = frame(2, 1, struct.pack(">HHQH", 60, 0, 16, 0x0100)
                                         + bytes([len(exp)]) + exp)
            parts += (pub_method, h, frame(3, 1, struct.pack(">QQ", i, ttl)))
        stamps.append((start, time.monotonic()))
        conn.s.sendall(b"".join(parts))
        on_batch(start + batch, acked[0])
        if errors:
            break
    done.wait()
    if errors:
        raise RuntimeError("publishing failed: " + "; ".join(errors[:3]))
    return stamps, time.monotonic()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5672)
    ap.add_argument("--pid", type=int, help="broker PID, for RSS and CPU time")
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--min-ttl", type=int, default=1000, help="ms (default 1000)")
    ap.add_argument("--max-ttl", type=int, default=10000, help="ms (default 10000)")
    ap.add_argument("--interval", type=float, default=0.5, help="sampling period, s")
    ap.add_argument("--batch", type=int, default=2000, help="messages per socket write")
    ap.add_argument("--timeout", type=float, default=None,
                    help="give up this many s after the last publish (default max-ttl*3 + 60 s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password", default="guest")
    ap.add_argument("--json", help="also write the samples and the summary here")
    a = ap.parse_args()
    if a.pid and not os.path.exists("/proc/%d" % a.pid):
        ap.error("no process %d" % a.pid)
    timeout = a.timeout if a.timeout is not None else a.max_ttl * 3 / 1000.0 + 60

    rnd = random.Random(a.seed)
    ttls = [rnd.randint(a.min_ttl, a.max_ttl) for _ in range(a.count)]
    q = "ttl-release-%d-%d" % (os.getpid(), int(time.time()))
    pub = Conn(a.host, a.port, a.user, a.password)
    probe = Conn(a.host, a.port, a.user, a.password)
    probe.declare(q)
    samples = []
    t0 = time.monotonic()
    rss0, cpu0 = rss_kib(a.pid), cpu_seconds(a.pid)
    print("queue %s: %d messages, TTL %d..%d ms, broker pid %s, RSS before %s KiB"
          % (q, a.count, a.min_ttl, a.max_ttl, a.pid or "-", rss0 if rss0 is not None else "-"))
    print("%8s %8s %10s %10s %10s %9s" % ("t(s)", "phase", "queued", "should", "RSS KiB",
                                          "CPU s"))
    expiry = None          # sorted absolute expiry times, once known

    def sample(phase):
        now = time.monotonic()
        count = probe.declare(q, passive=True)[0]
        should = None
        if expiry is not None:
            should = len(expiry) - bisect.bisect_right(expiry, now)
        s = {"t": round(now - t0, 3), "phase": phase, "queued": count, "should": should,
             "rss_kib": rss_kib(a.pid), "cpu_s": cpu_seconds(a.pid)}
        samples.append(s)
        print("%8.2f %8s %10d %10s %10s %9s" % (
            s["t"], phase, count, "-" if should is None else should,
            "-" if s["rss_kib"] is None else s["rss_kib"],
            "-" if s["cpu_s"] is None else "%.2f" % (s["cpu_s"] - cpu0)))
        sys.stdout.flush()
        return count

    next_sample = [t0 + a.interval]

    def on_batch(sent, acked):
        if time.monotonic() >= next_sample[0]:
            next_sample[0] += a.interval
            sample("publish")

    try:
        stamps, t_acked = publish(pub, q, ttls, a.batch, on_batch)
        cpu_pub = cpu_seconds(a.pid)
        # approximate each message's publish time by its batch's send time
        expiry = []
        for k, (start, ts) in enumerate(stamps):
            end = stamps[k + 1][0] if k + 1 < len(stamps) else a.count
            expiry.extend(ts + ttls[i] / 1000.0 for i in range(start, end))
        expiry.sort()
        last_expiry = expiry[-1]
        pub_s = t_acked - t0
        print("published and confirmed %d in %.2fs (%.0f msg/s)" % (a.count, pub_s,
                                                                    a.count / pub_s))
        deadline = t_acked + timeout
        t_empty = None
        while True:
            if sample("drain") == 0:
                t_empty = time.monotonic()
                break
            if time.monotonic() > deadline:
                print("gave up: queue not empty %.0fs after the last publish" % timeout)
                break
            next_sample[0] = max(next_sample[0] + a.interval, time.monotonic())
            time.sleep(max(0.0, next_sample[0] - time.monotonic()))
        # let the broker settle, then one last memory sample
        time.sleep(max(a.interval, 1.0))
        sample("after")
    finally:
        try:
            probe.delete(q)
        except Exception:                                   # noqa: BLE001
            pass
        probe.close()
        pub.close()

    held = [s["queued"] - s["should"] for s in samples if s["should"] is not None]
    rss = [s["rss_kib"] for s in samples if s["rss_kib"] is not None]
    summary = {
        "broker_pid": a.pid, "count": a.count, "min_ttl_ms": a.min_ttl, "max_ttl_ms": a.max_ttl,
        "publish_seconds": round(pub_s, 3), "publish_rate": round(a.count / pub_s),
        "empty_after_last_expiry_s": None if t_empty is None else round(t_empty - last_expiry, 3),
        "empty_after_publish_s": None if t_empty is None else round(t_empty - t_acked, 3),
        "max_expired_still_queued": max(held) if held else None,
        "mean_expired_still_queued": round(sum(held) / len(held)) if held else None,
        "rss_before_kib": rss0, "rss_peak_kib": max(rss) if rss else None,
        "rss_final_kib": rss[-1] if rss else None,
    }
    if a.pid:
        cpu_end = samples[-1]["cpu_s"]
        summary.update({
            "cpu_publish_s": round(cpu_pub - cpu0, 2),
            "cpu_drain_s": round(cpu_end - cpu_pub, 2),
            "cpu_publish_s_per_million": round((cpu_pub - cpu0) * 1e6 / a.count, 2),
            "cpu_drain_s_per_million": round((cpu_end - cpu_pub) * 1e6 / a.count, 2),
        })
        if rss0 is not None and rss:
            # first sample after the peak where RSS is back within 10% of the
            # growth above the starting RSS
            peak_i = rss.index(max(rss))
            goal = rss0 + 0.1 * (max(rss) - rss0)
            back = [s for s in samples[peak_i:] if s["rss_kib"] is not None
                    and s["rss_kib"] <= goal]
            summary["rss_back_within_10pct_at_s"] = back[0]["t"] if back else None
    print()
    for k, v in summary.items():
        print("%-32s %s" % (k, v))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summary, "samples": samples}, f, indent=1)
    return 0 if t_empty is not None else 1


if __name__ == "__main__":
    sys.exit(main())

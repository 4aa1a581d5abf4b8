"""test_startup - warrend's command line and startup checks, end to end.

Each way warrend can refuse to start must exit non-zero with one line that
says why; a good configuration must start, report the effective settings, listen,
and exit 0 on SIGTERM.
"""

import os
import socket
import subprocess

from warren_test import (Checks, WARRENCTL, base_args, free_port, run_warrend, start_then_stop,
                         temp_dir)

t = Checks()

# --version and --help
rc, out, err = run_warrend("--version")
t.check(rc == 0 and out.startswith("warrend (warren) "), "--version prints the version")
rc, out, err = run_warrend("--help")
t.check(rc == 0 and "--config FILE" in out and "--mgmt-port" in out, "--help prints usage")
rc, out, err = run_warrend("--no-such-option")
t.check(rc == 2 and "--help" in err, "an unknown option is a usage error (2)")
rc, out, err = run_warrend("extra-argument")
t.check(rc == 2, "a stray argument is a usage error (2)")

# Good start: defaults plus the test's own ports and data directory.
args = base_args()
rc, out, err = start_then_stop(*args)
t.check(rc == 0, "starts with defaults, listens, stops on SIGTERM (rc=%r, stderr=%r)" % (rc, err))
t.check(out.startswith("warrend "), "prints its version")
t.check("listeners.tcp.default = %s" % args[3] in out, "prints the effective port")
t.check("default_pass = ********" in out, "masks the default password")
t.check(os.path.isdir(args[7]), "creates the missing data directory")

# SIGTERM the moment a port listens (the management API's start still to
# come) ends in the orderly stop, not the signal's default action: the
# handler is in place before any port opens. Before, this died of the
# signal now and then (exit -15).
early = []
for _ in range(10):
    rc, out, err = start_then_stop(*base_args())
    early.append(rc)
t.check(early == [0] * 10, "stops in order on a SIGTERM as soon as it listens (%r)" % early)

# The configuration file, and the command line overriding it.
d = temp_dir()
conf = os.path.join(d, "warren.conf")
port = free_port()
with open(conf, "w") as f:
    f.write("# test\nheartbeat = 5\nlisteners.tcp.default = 1\nlog.level = warning\n")
rc, out, err = start_then_stop("-c", conf, *base_args()[:2], "--port", str(port),
                               "--mgmt-port", "0", "--data-dir", os.path.join(d, "data"))
t.check(rc == 0, "starts with a config file (stderr=%r)" % err)
t.check("heartbeat = 5" in out, "applies the config file")
t.check("listeners.tcp.default = %d" % port in out, "--port overrides the file")
t.check("management.tcp.port = 0" in out, "--mgmt-port 0 disables management")
t.check(err == "", "log.level = warning silences info lines")

# Bad configuration: file:line and reason, exit 1.
with open(conf, "w") as f:
    f.write("heartbeat = 5\n\nfrobnicate = yes\n")
rc, out, err = run_warrend("-c", conf, *base_args())
t.check(rc == 1 and err.strip() == "warrend: %s:3: frobnicate: unknown setting" % conf,
        "a bad setting fails with file:line (%r)" % err)
t.check(len(err.strip().splitlines()) == 1, "the reason is one line")
rc, out, err = run_warrend("-c", os.path.join(d, "missing.conf"), *base_args())
t.check(rc == 1 and "cannot open" in err, "a missing config file fails")
rc, out, err = run_warrend(*base_args(), "--port", "70000")
t.check(rc == 1 and "--port" in err and "out of range" in err, "a bad --port fails")
rc, out, err = run_warrend(*base_args(), "--log-level", "loud")
t.check(rc == 1 and "log level" in err, "a bad --log-level fails")
rc, out, err = run_warrend(*base_args(), "--bind", "localhost")
t.check(rc == 1 and "not an IPv4 or IPv6 address" in err, "--bind takes an IP address")
p = free_port()
rc, out, err = run_warrend(*base_args(), "--port", str(p), "--mgmt-port", str(p))
t.check(rc == 1 and "management.tcp.port" in err, "equal AMQP and management ports fail")

# Data directory that cannot be created (a path through a regular file: this
# fails even for root, who can write anywhere else).
blocker = os.path.join(d, "file")
open(blocker, "w").close()
args = base_args(os.path.join(blocker, "data"))
rc, out, err = run_warrend(*args)
t.check(rc == 1 and "data directory" in err and "cannot be created" in err,
        "an uncreatable data directory fails (%r)" % err)
args = base_args(blocker)
rc, out, err = run_warrend(*args)
t.check(rc == 1 and "not a directory" in err, "a data directory that is a file fails")

# Port in use: hold the port with a listening socket.
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    args = base_args()
    rc, out, err = run_warrend(*args[:2], "--port", str(busy), *args[4:])
    t.check(rc == 1 and "port in use" in err and str(busy) in err,
            "an AMQP port in use fails (%r)" % err)
    rc, out, err = run_warrend(*args[:4], "--mgmt-port", str(busy), *args[6:])
    t.check(rc == 1 and "management port" in err and "port in use" in err,
            "a management port in use fails (%r)" % err)
    rc, out, err = run_warrend(*args, "-s", "prometheus.tcp.port=%d" % busy)
    t.check(rc == 1 and "Prometheus port %d" % busy in err and "port in use" in err,
            "a Prometheus port in use fails (%r)" % err)

# warrenctl: version, and usage errors exit 2 (its commands: test_warrenctl.py).
p = subprocess.run([WARRENCTL, "--version"], capture_output=True, text=True)
t.check(p.returncode == 0 and p.stdout.startswith("warrenctl (warren) "), "warrenctl --version")
p = subprocess.run([WARRENCTL, "list_queues"], capture_output=True, text=True)
t.check(p.returncode == 2 and "unknown command 'list_queues'" in p.stderr,
        "warrenctl: unknown command exits 2 (%r)" % p.stderr)

t.exit()

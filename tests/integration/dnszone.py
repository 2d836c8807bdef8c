"""A throw-away DNS server for tests: unbound on a free 127.0.0.1 port,
answering a test zone from local-data (no DNSSEC, no recursion).

    import dnszone
    port, stop = dnszone.start([
        "example.test. MX 10 mx1.example.test.",
        "mx1.example.test. A 127.0.0.2",
        "nullmx.test. MX 0 .",
    ], tmp_path)
    ... [delivery] resolver = dnszone.resolver(port)  # "127.0.0.1@PORT"
    stop()

Records are unbound local-data lines (zone file syntax, owner names
absolute). Each owner's last two labels ("example.test.") become a static
zone, so other names in it are NXDOMAIN; names outside every zone are
NXDOMAIN too (unbound's own .test zone) unless ``zones`` says otherwise.
``zones`` maps extra zone names to an unbound local-zone type, e.g.
{"broken.test.": "refuse"} for a zone whose answers fail (REFUSED, which
libunbound reports as SERVFAIL: a temporary failure).

``start`` raises RuntimeError when unbound is missing or does not start;
``available()`` tells beforehand (for pytest.skip).
"""

import os
import signal
import socket
import subprocess
import time

UNBOUND = "/usr/sbin/unbound"
START_TIMEOUT = 10.0


def available():
    """True when the unbound binary is installed."""
    return os.access(UNBOUND, os.X_OK)


def resolver(port):
    """The [delivery] resolver value for a server on port."""
    return "127.0.0.1@%d" % port


def _zone_of(owner):
    labels = [x for x in owner.rstrip(".").split(".") if x]
    return ".".join(labels[-2:]).lower() + "."


def _config(port, workdir, records, zones):
    lines = [
        "server:",
        "    interface: 127.0.0.1",
        "    port: %d" % port,
        "    do-daemonize: no",
        "    use-syslog: no",
        '    logfile: ""',
        '    chroot: ""',
        '    username: ""',
        '    directory: "%s"' % workdir,
        '    pidfile: ""',
        "    do-ip6: no",
        "    num-threads: 1",
        '    module-config: "iterator"',
    ]
    declared = {}
    for rr in records:
        if "'" in rr or "\n" in rr:
            raise ValueError("record has a quote or newline: %r" % rr)
        declared.setdefault(_zone_of(rr.split()[0]), "static")
    declared.update(zones or {})
    for name, kind in sorted(declared.items()):
        lines.append('    local-zone: "%s" %s' % (name, kind))
    for rr in records:
        lines.append("    local-data: '%s'" % rr)
    lines += ["remote-control:", "    control-enable: no", ""]
    return "\n".join(lines)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stopper(proc):
    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return stop


def _try_start(records, workdir, zones):
    port = _free_port()
    conf = os.path.join(workdir, "unbound.conf")
    with open(conf, "w") as f:
        f.write(_config(port, workdir, records, zones))
    log = open(os.path.join(workdir, "unbound.log"), "ab")
    proc = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if proc.poll() is not None:
            return None, None          # the port was taken meanwhile
        if _answers(port):
            return port, _stopper(proc)
        time.sleep(0.02)
    _stopper(proc)()
    return None, None


def start(zone_records, tmpdir, zones=None):
    """Starts unbound serving zone_records (list of str) with its files in
    tmpdir/dnszone; returns (port, stop). stop() may be called twice."""
    if not available():
        raise RuntimeError("%s is not installed" % UNBOUND)
    workdir = os.path.join(str(tmpdir), "dnszone")
    os.makedirs(workdir, exist_ok=True)
    for _ in range(5):
        port, stop = _try_start(list(zone_records), workdir, zones)
        if port is not None:
            return port, stop
    with open(os.path.join(workdir, "unbound.log"), errors="replace") as f:
        raise RuntimeError("unbound did not start:\n" + f.read())

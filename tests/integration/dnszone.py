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

Signed zones (DNSSEC, for DANE tests): ``signed`` maps a zone name to its
records (zone file lines, owner names absolute); each zone gets an SOA and
NS, is signed with fresh keys by ldns-signzone (NSEC3) and is served from
an unbound auth-zone. ``corrupt`` lists owner names whose RRSIGs are
spoilt after signing (their answers are then bogus). The DS records of
every signed zone are written to ``anchor_file(tmpdir)``: a validating
resolver given that file as its trust anchor sees the zone as secure.
``signing_available()`` tells whether the ldns tools are installed.
"""

import os
import random
import re
import signal
import socket
import subprocess
import time

UNBOUND = "/usr/sbin/unbound"
LDNS_KEYGEN = "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = "/usr/bin/ldns-signzone"
START_TIMEOUT = 10.0


def available():
    """True when the unbound binary is installed."""
    return os.access(UNBOUND, os.X_OK)


def signing_available():
    """True when the ldns tools that sign zones are installed."""
    return available() and os.access(LDNS_KEYGEN, os.X_OK) and \
        os.access(LDNS_SIGNZONE, os.X_OK)


def anchor_file(tmpdir):
    """The trust anchor file (DS records) of start(..., signed=...)."""
    return os.path.join(str(tmpdir), "dnszone", "anchors.ds")


def _keygen(workdir, zone, ksk):
    args = [LDNS_KEYGEN, "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else [])
    out = subprocess.run(args + [zone], cwd=workdir, check=True,
                         capture_output=True, text=True).stdout.strip()
    return os.path.join(workdir, out)


def _spoil(text, owners):
    """Flips one base64 character of the RRSIGs of owners."""
    out = []
    wanted = {o.lower().rstrip(".") + "." for o in owners}
    for line in text.splitlines():
        f = line.split()
        if len(f) > 4 and f[0].lower() in wanted and f[3] == "RRSIG" \
                and f[4] != "NSEC3":
            sig = f[-1]
            f[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
            line = "\t".join(f)
        out.append(line)
    return "\n".join(out) + "\n"


def _sign(workdir, zone, records, corrupt):
    """Signs zone; returns (signed file, DS record text)."""
    zone = zone.rstrip(".") + "."
    base = zone.rstrip(".")
    path = os.path.join(workdir, base + ".zone")
    with open(path, "w") as f:
        f.write("$TTL 300\n")
        f.write("%s IN SOA ns.%s admin.%s 1 3600 600 86400 300\n"
                % (zone, zone, zone))
        f.write("%s IN NS ns.%s\n" % (zone, zone))
        f.write("ns.%s IN A 127.0.0.1\n" % zone)
        for rr in records:
            f.write(rr + "\n")
    ksk = _keygen(workdir, base, True)
    zsk = _keygen(workdir, base, False)
    subprocess.run([LDNS_SIGNZONE, "-n", "-f", path + ".signed", path,
                    ksk, zsk], cwd=workdir, check=True,
                   capture_output=True, text=True)
    signed = path + ".signed"
    if corrupt:
        with open(signed) as f:
            text = _spoil(f.read(), corrupt)
        with open(signed, "w") as f:
            f.write(text)
    with open(ksk + ".ds") as f:
        ds = re.sub(r"\s+", " ", f.read().strip())
    return signed, ds


def resolver(port):
    """The [delivery] resolver value for a server on port."""
    return "127.0.0.1@%d" % port


def _zone_of(owner):
    labels = [x for x in owner.rstrip(".").split(".") if x]
    return ".".join(labels[-2:]).lower() + "."


def _config(port, workdir, records, zones, auth=None):
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
    # a transparent local zone lets the names through to the auth-zone
    # (unbound's own "test." zone would answer NXDOMAIN first)
    for name in sorted(auth or {}):
        lines.append('    local-zone: "%s" transparent' % name)
    for name, path in sorted((auth or {}).items()):
        lines += ["auth-zone:", '    name: "%s"' % name,
                  '    zonefile: "%s"' % path, "    for-downstream: yes",
                  "    for-upstream: no", "    fallback-enabled: no"]
    lines += ["remote-control:", "    control-enable: no", ""]
    return "\n".join(lines)


_handed_out = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port on 127.0.0.1 free for both TCP and UDP a moment ago, outside
    the kernel's ephemeral range: the suite's thousands of client
    connections take their local ports (and leave them in TIME_WAIT)
    from that range, so a port picked there can be taken again before
    the server binds it. Never the same port twice in one run."""
    lo, hi = _ephemeral_range()
    first, last = (10000, lo - 1) if lo - 10000 >= 2000 else (hi + 1, 65535)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        port = rng.randint(first, last)
        if port in _handed_out:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port in %d-%d" % (first, last))


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


def _try_start(records, workdir, zones, auth=None):
    port = free_port()
    conf = os.path.join(workdir, "unbound.conf")
    with open(conf, "w") as f:
        f.write(_config(port, workdir, records, zones, auth))
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


def start(zone_records, tmpdir, zones=None, signed=None, corrupt=()):
    """Starts unbound serving zone_records (list of str) with its files in
    tmpdir/dnszone, and the zones of signed ({name: [records]}) signed;
    returns (port, stop). stop() may be called twice."""
    if not available():
        raise RuntimeError("%s is not installed" % UNBOUND)
    workdir = os.path.join(str(tmpdir), "dnszone")
    os.makedirs(workdir, exist_ok=True)
    auth = {}
    if signed:
        if not signing_available():
            raise RuntimeError("ldns-keygen/ldns-signzone not installed")
        anchors = []
        for name, rrs in sorted(signed.items()):
            name = name.rstrip(".") + "."
            path, ds = _sign(workdir, name, rrs, corrupt)
            auth[name] = path
            anchors.append(ds)
        with open(anchor_file(tmpdir), "w") as f:
            f.write("\n".join(anchors) + "\n")
    for _ in range(5):
        port, stop = _try_start(list(zone_records), workdir, zones, auth)
        if port is not None:
            return port, stop
    with open(os.path.join(workdir, "unbound.log"), errors="replace") as f:
        raise RuntimeError("unbound did not start:\n" + f.read())

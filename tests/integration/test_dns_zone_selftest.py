"""dnszone.py starts a server that answers its zone: MX, A, null MX,
NXDOMAIN and REFUSED, asked over UDP with a minimal stdlib DNS client."""

import os
import random
import socket
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import dnszone  # noqa: E402

pytestmark = pytest.mark.skipif(not dnszone.available(),
                                reason="unbound is not installed")

TYPE_A, TYPE_MX = 1, 15


def ask(port, name, qtype):
    """(rcode, answer count) of one query."""
    qid = random.randrange(65536)
    qname = b"".join(bytes([len(x)]) + x.encode()
                     for x in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + \
        struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(packet, ("127.0.0.1", port))
        reply = s.recv(4096)
    rid, flags, _, ancount = struct.unpack(">HHHH", reply[:8])
    assert rid == qid
    return flags & 0xF, ancount


def test_zone_answers(tmp_path):
    port, stop = dnszone.start([
        "example.test. MX 10 mx1.example.test.",
        "example.test. MX 20 mx2.example.test.",
        "mx1.example.test. A 127.0.0.2",
        "nullmx.test. MX 0 .",
    ], tmp_path, zones={"broken.test.": "refuse"})
    try:
        assert dnszone.resolver(port) == "127.0.0.1@%d" % port
        assert ask(port, "example.test", TYPE_MX) == (0, 2)
        assert ask(port, "mx1.example.test", TYPE_A) == (0, 1)
        assert ask(port, "nullmx.test", TYPE_MX) == (0, 1)
        assert ask(port, "nx.example.test", TYPE_A)[0] == 3
        assert ask(port, "elsewhere.test", TYPE_MX)[0] == 3
        assert ask(port, "broken.test", TYPE_MX)[0] == 5
    finally:
        stop()
        stop()


def test_bad_record_is_refused(tmp_path):
    with pytest.raises(ValueError):
        dnszone.start(["x.test. TXT 'quoted'"], tmp_path)

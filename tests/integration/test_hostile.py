"""Hostile input found by review: size arithmetic, memory under TLS,
BDAT sequencing, refused TLS connections."""

import os
import socket
import ssl
import time

from conftest import PASSWORD, SANITIZED, TIMEOUT, free_port, wait_until

ALICE = "alice@example.test"


def spool_bytes(srv):
    tmp = srv.data_dir / "queue" / "tmp"
    return sum(f.stat().st_size for f in tmp.iterdir()) if tmp.exists() else 0


def test_bdat_size_cannot_wrap(server):
    """1 + (2^64 - 1) must not wrap to 0 and let the chunk in unbounded."""
    srv = server(limits={"max_message_size": "64k"})
    with srv.raw() as c:
        c.greeting()
        assert c.cmd("EHLO client.example.test")[0] == 250
        assert c.cmd("MAIL FROM:<x@remote.test>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        c.send("BDAT 1\r\nx")
        assert c.reply()[0] == 250
        c.send("BDAT 18446744073709551615 LAST\r\n")
        chunk = b"y" * 65536
        for _ in range(32):                     # 2 MiB, 32 x the limit
            c.send(chunk)
        time.sleep(0.5)
        assert spool_bytes(srv) < 64 * 1024 + 4096
    assert srv.all_maildir_files() == []


def test_rcpt_between_bdat_chunks_is_refused(server):
    srv = server()
    with srv.raw() as c:
        c.greeting()
        assert c.cmd("EHLO client.example.test")[0] == 250
        assert c.cmd("MAIL FROM:<x@remote.test>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        c.send("BDAT 7\r\nSub: x\n")
        assert c.reply()[0] == 250
        code, text = c.cmd("RCPT TO:<bob@example.test>")
        assert code == 503, text
        c.send("BDAT 6 LAST\r\nbody\r\n")
        code, text = c.reply()
        # The chunk had a bare LF: refused, but the session is in sync.
        assert code in (250, 550), text
        assert c.cmd("NOOP")[0] == 250
    assert srv.maildir_files("bob@example.test") == []


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_tls_output_is_bounded_when_client_does_not_read(server):
    p995 = free_port()
    srv = server(extra={"pop3s": {"listen": f"127.0.0.1:{p995}"}})
    big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 4000  # ~4 MB
    import smtplib
    with smtplib.SMTP(srv.host, srv.port, timeout=TIMEOUT) as c:
        c.sendmail("x@remote.test", [ALICE], big)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection((srv.host, p995)),
                        server_hostname="x")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.recv(100)
    s.sendall(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
    time.sleep(1.5 * (4 if SANITIZED else 1))
    before = rss_kb(srv.proc.pid)
    s.sendall(b"RETR 1\r\n" * 10)               # 40 MB, never read
    time.sleep(2 * (4 if SANITIZED else 1))
    after = rss_kb(srv.proc.pid)
    s.close()
    # Unbounded, this grows by the whole 40 MB (seen: +98 MB).
    assert after - before < 24 * 1024, (before, after)


def test_refused_implicit_tls_connection_gets_no_handshake(server):
    p465 = free_port()
    srv = server(limits={"max_connections_per_ip": 1},
                 extra={"submissions": {"listen": f"127.0.0.1:{p465}"}})
    first = socket.create_connection((srv.host, p465))
    wait_until(lambda: "service=submissions" in srv.log_text())
    second = socket.create_connection((srv.host, p465))
    second.settimeout(TIMEOUT)
    second.sendall(b"\x16\x03\x01\x00\x00")      # start of a ClientHello
    try:
        got = second.recv(100)                  # closed, nothing sent
    except ConnectionResetError:
        got = b""
    assert got == b""
    second.close()
    first.close()
    assert "refused=max_connections_per_ip" in srv.log_text()

"""STARTTLS on the smtp listener (RFC 3207): handshake, session reset,
command injection, protocol versions, self-signed default, SIGHUP reload."""

import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import CORREO_BIN, TIMEOUT, wait_until


def client_ctx(**kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def ehlo_lines(raw):
    code, text = raw.cmd("EHLO client.example.test")
    assert code == 250
    return [l.upper() for l in text.split("\n")]


def starttls_raw(srv, pre_ehlo=True):
    """A raw socket that has done STARTTLS; returns (tls socket, file)."""
    s = socket.create_connection((srv.host, srv.port), timeout=TIMEOUT)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    if pre_ehlo:
        s.sendall(b"EHLO client.example.test\r\n")
        while f.readline()[3:4] != b" ":
            pass
    s.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220 2.0.0")
    t = client_ctx().wrap_socket(s, server_hostname=srv.hostname)
    return t


def tls_cmd(t, line):
    t.sendall(line.encode() + b"\r\n")
    data = b""
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] != b" ":
        chunk = t.recv(4096)
        assert chunk, "connection closed"
        data += chunk
    return data.decode()


def test_starttls_advertised_then_not(server):
    srv = server()
    with srv.raw() as raw:
        raw.greeting()
        assert "STARTTLS" in ehlo_lines(raw)
    t = starttls_raw(srv)
    reply = tls_cmd(t, "EHLO client.example.test")
    assert reply.startswith("250-")
    assert "STARTTLS" not in reply.upper()
    assert "PIPELINING" in reply
    assert tls_cmd(t, "STARTTLS").startswith("503 5.5.1")
    t.close()


def test_session_reset_after_starttls(server):
    srv = server()
    t = starttls_raw(srv)
    # RFC 3207 4.2: the EHLO before TLS is forgotten.
    assert tls_cmd(t, "MAIL FROM:<a@example.org>").startswith("503 5.5.1")
    t.close()


def test_delivery_over_tls_says_esmtps(server):
    srv = server()
    with smtplib.SMTP(srv.host, srv.port, timeout=TIMEOUT) as c:
        c.ehlo()
        c.starttls(context=client_ctx())
        c.ehlo()
        c.sendmail("sender@example.org", ["alice@example.test"],
                   b"Subject: tls\r\n\r\nover tls\r\n")
    files = srv.maildir_files("alice@example.test")
    assert len(files) == 1
    head = files[0].read_bytes().split(b"\r\n\r\n")[0]
    assert b"with ESMTPS id" in head
    log = srv.log_text()
    assert "event=tls version=TLSv1." in log


def test_starttls_before_ehlo(server):
    srv = server()
    t = starttls_raw(srv, pre_ehlo=False)
    assert tls_cmd(t, "EHLO client.example.test").startswith("250-")
    t.close()


def test_injected_plaintext_is_discarded(server):
    """CVE-2011-0411: commands pipelined after STARTTLS in plaintext must
    never be executed inside TLS."""
    srv = server()
    s = socket.create_connection((srv.host, srv.port), timeout=TIMEOUT)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    s.sendall(b"EHLO x.example.test\r\n")
    while f.readline()[3:4] != b" ":
        pass
    s.sendall(b"STARTTLS\r\nHELP\r\nMAIL FROM:<evil@example.org>\r\n")
    assert f.readline().startswith(b"220 2.0.0")
    t = client_ctx().wrap_socket(s, server_hostname="x")
    # Were HELP injected, a 214 would come first.
    reply = tls_cmd(t, "NOOP")
    assert reply.startswith("250 2.0.0"), reply
    t.settimeout(0.5)
    with pytest.raises((socket.timeout, ssl.SSLError, TimeoutError)):
        extra = t.recv(100)
        if not extra:
            raise socket.timeout
    t.close()
    assert "tls-injection-discarded" in srv.log_text()


def test_old_tls_versions_refused(server):
    srv = server()
    s = socket.create_connection((srv.host, srv.port), timeout=TIMEOUT)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220 ")
    ctx = client_ctx()
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx.wrap_socket(s, server_hostname="x")
    s.close()
    # The failed handshake closed that connection only.
    with srv.raw() as raw:
        raw.greeting()


def test_garbage_handshake_then_server_serves(server):
    srv = server()
    with srv.raw() as raw:
        raw.greeting()
        raw.send("STARTTLS\r\n")
        assert raw.reply()[0] == 220
        raw.send(b"\x16\x03\x01\x00\x05hello this is not tls\r\n" * 3)
        assert raw.closed(TIMEOUT)
    with srv.raw() as raw:
        raw.greeting()
        assert raw.cmd("NOOP")[0] == 250


def test_self_signed_pair_created(server):
    srv = server()
    assert (srv.data_dir / "tls" / "cert.pem").exists()
    key = srv.data_dir / "tls" / "key.pem"
    assert key.exists()
    assert key.stat().st_mode & 0o077 == 0


def make_pair(tmp_path, name):
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", f"/CN={name}.example.test"],
                   check=True, capture_output=True)
    return cert, key


def peer_cn(srv):
    t = starttls_raw(srv)
    der = t.getpeercert(binary_form=True)
    t.close()
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"],
                         input=pem, text=True, capture_output=True,
                         check=True).stdout
    return out


def test_configured_cert_and_sighup_reload(server, tmp_path):
    cert, key = make_pair(tmp_path, "first")
    srv = server(extra={"tls": {"cert": str(cert), "key": str(key)}})
    assert "first.example.test" in peer_cn(srv)
    # A session in TLS survives the reload.
    held = starttls_raw(srv)
    new_cert, new_key = make_pair(tmp_path, "second")
    new_cert.replace(cert)
    new_key.replace(key)
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "event=reload result=ok" in srv.log_text())
    assert "second.example.test" in peer_cn(srv)
    assert tls_cmd(held, "NOOP").startswith("250")
    held.close()


def test_bad_cert_refuses_to_start(server, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    srv = server(start=False,
                 extra={"tls": {"cert": str(bad), "key": str(bad)}})
    r = subprocess.run([CORREO_BIN, "-c", str(srv.cfg), "serve"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode != 0
    assert "tls" in r.stderr


def test_swaks_tls(server):
    srv = server()
    r = subprocess.run(["swaks", "--server", f"{srv.host}:{srv.port}",
                        "--to", "bob@example.test", "--from",
                        "x@example.org", "--tls"],
                       capture_output=True, text=True, timeout=TIMEOUT * 3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(srv.maildir_files("bob@example.test")) == 1

"""The submission service (587 STARTTLS, 465 implicit TLS) and SMTP AUTH
(RFC 4954): PLAIN, LOGIN, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, no password
in plaintext, sender ownership, throttling of failures."""

import base64
import hashlib
import hmac
import os
import re
import smtplib
import socket
import ssl
import time

import pytest

from conftest import PASSWORD, TIMEOUT, free_port

ALICE = "alice@example.test"
BOB = "bob@example.test"


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


@pytest.fixture
def sub(server):
    p587, p465 = free_port(), free_port()
    srv = server(extra={"submission": {"listen": f"127.0.0.1:{p587}"},
                        "submissions": {"listen": f"127.0.0.1:{p465}"}},
                 aliases={"sales@example.test": ALICE})
    srv.p587, srv.p465 = p587, p465
    return srv


class Line:
    """A line-level client over a plain or TLS socket."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def send(self, line):
        self.s.sendall(line.encode() + b"\r\n")

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(4096)
                assert chunk, "closed"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(lines[0][:3]), lines

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def starttls(self):
        code, _ = self.cmd("STARTTLS")
        assert code == 220
        self.s = ctx().wrap_socket(self.s, server_hostname="x")


def connect(srv, port, tls=False, ehlo=True):
    s = socket.create_connection((srv.host, port), timeout=TIMEOUT)
    if tls:
        s = ctx().wrap_socket(s, server_hostname="x")
    c = Line(s)
    assert c.reply()[0] == 220
    if ehlo:
        assert c.cmd("EHLO client.example.test")[0] == 250
    return c


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def test_plaintext_587_offers_no_auth(sub):
    c = connect(sub, sub.p587)
    code, lines = c.cmd("EHLO client.example.test")
    caps = [l[4:].upper() for l in lines]
    assert "STARTTLS" in caps
    assert not any(x.startswith("AUTH") for x in caps)
    code, lines = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))
    assert code == 538 and lines[0].startswith("538 5.7.11")
    code, lines = c.cmd(f"MAIL FROM:<{ALICE}>")
    assert code == 530 and lines[0].startswith("530 5.7.0")


def test_auth_required_before_mail(sub):
    c = connect(sub, sub.p587)
    c.starttls()
    code, lines = c.cmd("EHLO client.example.test")
    auth = [l for l in lines if l[4:].upper().startswith("AUTH ")]
    assert auth, lines
    mechs = auth[0][9:].split()
    assert {"PLAIN", "LOGIN", "SCRAM-SHA-256"} <= set(mechs)
    code, lines = c.cmd(f"MAIL FROM:<{ALICE}>")
    assert code == 530 and lines[0].startswith("530 5.7.0")


def test_submit_with_smtplib_plain_587(sub):
    with smtplib.SMTP(sub.host, sub.p587, timeout=TIMEOUT) as s:
        s.starttls(context=ctx())
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [BOB], b"Subject: hi\r\n\r\nfrom alice\r\n")
    files = sub.maildir_files(BOB)
    assert len(files) == 1
    assert b"with ESMTPSA id" in files[0].read_bytes()
    assert "event=auth result=ok user=alice@example.test" in sub.log_text()


def test_submit_over_465(sub):
    with smtplib.SMTP_SSL(sub.host, sub.p465, timeout=TIMEOUT,
                          context=ctx()) as s:
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [BOB], b"Subject: 465\r\n\r\nimplicit\r\n")
    assert len(sub.maildir_files(BOB)) == 1


def test_auth_login_and_cancel(sub):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH LOGIN")[0] == 334
    assert c.cmd(b64(ALICE))[0] == 334
    code, lines = c.cmd(b64(PASSWORD))
    assert code == 235 and lines[0].startswith("235 2.7.0")
    # Once authenticated, AUTH again is a sequence error.
    assert c.cmd("AUTH PLAIN")[0] == 503
    c2 = connect(sub, sub.p465, tls=True)
    assert c2.cmd("AUTH LOGIN")[0] == 334
    code, lines = c2.cmd("*")
    assert code == 501
    assert c2.cmd("NOOP")[0] == 250


def test_wrong_password_and_unknown_user_look_the_same(sub):
    c = connect(sub, sub.p465, tls=True)
    code1, l1 = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0wrong"))
    code2, l2 = c.cmd("AUTH PLAIN " + b64(f"\0nobody@example.test\0wrong"))
    assert code1 == code2 == 535
    assert l1 == l2
    assert l1[0].startswith("535 5.7.8")


def test_malformed_and_unknown_mechanism(sub):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH PLAIN !!!notbase64!!!")[0] == 501
    assert c.cmd("AUTH CRAM-MD5")[0] == 504
    assert c.cmd("AUTH")[0] == 501


def test_auth_in_transaction_is_503(sub):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 235
    assert c.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
    assert c.cmd("AUTH PLAIN")[0] == 503


def test_sender_must_be_own(sub):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 235
    code, lines = c.cmd(f"MAIL FROM:<{BOB}>")
    assert code == 553 and lines[0].startswith("553 5.7.1")
    for own in (ALICE, "ALICE@Example.Test", "alice+lists@example.test",
                "sales@example.test", ""):
        assert c.cmd(f"MAIL FROM:<{own}>")[0] == 250, own
        assert c.cmd("RSET")[0] == 250


def test_authenticated_remote_recipients_are_queued(sub):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 235
    assert c.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
    assert c.cmd("RCPT TO:<friend@remote.test>")[0] == 250
    assert c.cmd("RCPT TO:<other@elsewhere.test>")[0] == 250
    assert c.cmd(f"RCPT TO:<{BOB}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, lines = c.cmd(f"From: {ALICE}\r\nSubject: out\r\n\r\nhi\r\n.")
    assert code == 250, lines
    qid = lines[0].split()[-1]
    assert len(sub.maildir_files(BOB)) == 1
    show = sub.cli("queue", "show", qid).stdout
    # pending, or deferred once the first attempt failed (no DNS here)
    assert re.search(r"rcpt: <friend@remote\.test> (pending|deferred)", show)
    assert re.search(r"rcpt: <other@elsewhere\.test> (pending|deferred)",
                     show)
    assert f"user: {ALICE}" in show
    assert f"<{BOB}>" not in show
    msg = (sub.data_dir / "queue" / "msg" / qid).read_bytes()
    assert b"with ESMTPSA id " + qid.encode() in msg
    assert msg.endswith(b"\r\nhi\r\n")
    # The queue survives a restart; an orphan message file does not.
    orphan = sub.data_dir / "queue" / "msg" / ("0" * 16)
    orphan.write_bytes(b"never acknowledged")
    sub.restart()
    assert qid in sub.cli("queue", "list").stdout
    assert not orphan.exists()
    assert sub.cli("queue", "delete", qid).returncode == 0
    assert sub.cli("queue", "list").stdout == ""
    assert not (sub.data_dir / "queue" / "msg" / qid).exists()
    r = sub.cli("queue", "show", qid, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    # nothing left to flush
    r = sub.cli("queue", "flush", check=False)
    assert r.returncode == 0 and "0 message" in r.stdout


def test_auth_on_port_25_after_starttls(sub):
    c = connect(sub, sub.port)
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 538
    c.starttls()
    assert c.cmd("EHLO x.example.test")[0] == 250
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 235


def scram_client(c, user, password, mech="SCRAM-SHA-256", cbind=None):
    """RFC 5802/7677 client; cbind is the tls-exporter data for -PLUS.
    Returns the final reply code."""
    nonce = b64(os.urandom(18))
    gs2 = "p=tls-exporter,," if cbind is not None else "n,,"
    first_bare = f"n={user},r={nonce}"
    code, lines = c.cmd(f"AUTH {mech} " + b64(gs2 + first_bare))
    if code != 334:
        return code
    server_first = base64.b64decode(lines[0][4:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salt = base64.b64decode(attrs["s"])
    it = int(attrs["i"])
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    cb = gs2.encode() + (cbind or b"")
    without_proof = f"c={b64(cb)},r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    code, lines = c.cmd(b64(f"{without_proof},p={b64(proof)}"))
    if code != 334:
        return code
    server_final = base64.b64decode(lines[0][4:]).decode()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
    assert server_final == "v=" + b64(want)
    return c.cmd("")[0]


def test_scram_sha_256(sub):
    c = connect(sub, sub.p465, tls=True)
    assert scram_client(c, ALICE, PASSWORD) == 235
    c2 = connect(sub, sub.p465, tls=True)
    assert scram_client(c2, ALICE, "wrong") == 535


def test_scram_sha_256_plus_binds_to_tls(sub):
    c = connect(sub, sub.p465, tls=True)
    if c.s.version() != "TLSv1.3":
        pytest.skip("tls-exporter needs TLS 1.3")
    # Python's ssl has no exporter API, so the client cannot compute the
    # right binding; a wrong one (a man in the middle's) must fail even
    # with the right password.
    assert scram_client(c, ALICE, PASSWORD, "SCRAM-SHA-256-PLUS",
                        cbind=b"\0" * 32) == 535


def test_failures_slow_down(sub):
    c = connect(sub, sub.p465, tls=True)
    times = []
    for _ in range(4):
        t0 = time.monotonic()
        assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0bad"))[0] == 535
        times.append(time.monotonic() - t0)
    # The first two failures are free; then the delay grows.
    assert times[3] >= 1.0, times
    assert times[3] > times[0] + 0.5, times
    assert "event=auth result=fail" in sub.log_text()


def send_with_from(sub, from_header, env_from=ALICE):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 235
    assert c.cmd(f"MAIL FROM:<{env_from}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{BOB}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    hdr = f"From: {from_header}\r\n" if from_header is not None else ""
    code, lines = c.cmd(f"{hdr}Subject: f\r\n\r\nbody\r\n.")
    return code, lines


@pytest.mark.parametrize("hdr", [
    "alice@example.test", '"Alice A." <alice@example.test>',
    "Alice <ALICE@example.test>", "<sales@example.test>",
    "alice+x@example.test (me)", None])
def test_from_header_own_is_accepted(sub, hdr):
    code, lines = send_with_from(sub, hdr)
    assert code == 250, lines
    assert len(sub.maildir_files(BOB)) == 1


@pytest.mark.parametrize("hdr", [
    "bob@example.test", '"alice@example.test" <bob@example.test>',
    "alice@example.test, ceo@remote.test", "<>", "undisclosed",
    "Alice\r\n <boss@remote.test>"])
def test_from_header_not_own_is_refused(sub, hdr):
    code, lines = send_with_from(sub, hdr)
    assert code == 553 and lines[0].startswith("553 5.7.1"), lines
    assert sub.maildir_files(BOB) == []


@pytest.mark.parametrize("mech,tls", [("PLAIN", "--tls"),
                                      ("LOGIN", "--tls-on-connect")])
def test_swaks_submits(sub, mech, tls):
    port = sub.p587 if tls == "--tls" else sub.p465
    import subprocess
    r = subprocess.run(["swaks", "--server", f"{sub.host}:{port}", tls,
                        "--auth", mech, "--auth-user", ALICE,
                        "--auth-password", PASSWORD, "--from", ALICE,
                        "--to", BOB, "--header", f"From: {ALICE}"],
                       capture_output=True, text=True, timeout=TIMEOUT * 3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    assert len(sub.maildir_files(BOB)) == 1


def test_client_gone_during_auth_step(sub):
    """A session that closes while its SASL step waits (throttled) or runs
    is cleaned up; the server keeps serving."""
    c = connect(sub, sub.p465, tls=True)
    for _ in range(3):
        assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0bad"))[0] == 535
    c.send("AUTH PLAIN " + b64(f"\0{ALICE}\0bad"))
    c.s.close()
    c2 = connect(sub, sub.p465, tls=True)
    c2.send("AUTH PLAIN " + b64(f"\0{BOB}\0{PASSWORD}"))
    c2.s.close()
    time.sleep(1.5)
    c3 = connect(sub, sub.p587)
    assert c3.cmd("NOOP")[0] == 250


def submitted_file(sub, message):
    c = connect(sub, sub.p465, tls=True)
    assert c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))[0] == 235
    assert c.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{BOB}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, lines = c.cmd(message + "\r\n.")
    assert code == 250, lines
    files = sub.maildir_files(BOB)
    assert len(files) == 1
    return files[0].read_bytes()


def test_missing_message_id_and_date_are_added(sub):
    body = "line one\r\n\r\nline three"
    data = submitted_file(sub, f"From: {ALICE}\r\nSubject: s\r\n\r\n{body}")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert rest == body.encode() + b"\r\n"
    fields = [l.split(b":")[0].lower() for l in head.split(b"\r\n")
              if l and l[:1] not in (b" ", b"\t")]
    assert fields.count(b"message-id") == 1
    assert fields.count(b"date") == 1
    assert b"Message-ID: <" in head and b"@mx.example.test>" in head


def test_present_message_id_and_date_are_kept(sub):
    msg = (f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: {ALICE}\r\n"
           f"Message-Id: <mine@example.test>\r\n\r\nbody")
    data = submitted_file(sub, msg)
    head = data.partition(b"\r\n\r\n")[0]
    assert head.lower().count(b"message-id:") == 1
    assert b"<mine@example.test>" in head
    assert head.lower().count(b"\r\ndate:") + head.lower().startswith(
        b"date:") == 1


def test_headers_only_message_gets_fields(sub):
    data = submitted_file(sub, f"From: {ALICE}\r\nSubject: only headers")
    assert data.lower().count(b"message-id:") == 1
    assert data.count(b"\r\nDate: ") == 1
    assert b"Subject: only headers\r\n" in data

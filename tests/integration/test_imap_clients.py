"""Real IMAP clients against correo: mbsync (isync) syncing a mailbox both
ways over STARTTLS and offlineimap reading it over implicit TLS, with the
results checked on both sides (correo's Maildir and the client's)."""

import imaplib
import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD, TIMEOUT, free_port

ALICE = "alice@example.test"
SENDER = "sender@remote.test"


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


@pytest.fixture
def imap(server):
    p143, p993 = free_port(), free_port()
    srv = server(extra={"imap": {"listen": f"127.0.0.1:{p143}"},
                        "imaps": {"listen": f"127.0.0.1:{p993}"}})
    srv.p143, srv.p993 = p143, p993
    return srv


def message(subject, body="hello\r\n"):
    return (f"From: <{SENDER}>\r\nTo: <{ALICE}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
            f"\r\n{body}").encode()


def deliver(srv, msgs):
    with srv.smtp() as c:
        for m in msgs:
            assert c.sendmail(SENDER, [ALICE], m) == {}


def files(d):
    return sorted(p for sub in ("cur", "new") if (d / sub).is_dir()
                  for p in (d / sub).iterdir())


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=TIMEOUT * 6, **kw)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync missing")
def test_mbsync_syncs_both_ways(imap, tmp_path):
    deliver(imap, [message(f"to sync {i}") for i in range(5)])
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""
IMAPAccount correo
Host 127.0.0.1
Port {imap.p143}
User {ALICE}
Pass "{PASSWORD}"
SSLType STARTTLS
CertificateFile {imap.data_dir}/tls/cert.pem
SystemCertificates no

IMAPStore remote
Account correo

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    run(["mbsync", "-c", str(rc), "-a"])
    got = files(local / "INBOX")
    assert len(got) == 5
    assert sorted(p.read_bytes().count(b"to sync") for p in got) == [1] * 5
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert (local / name).is_dir(), name
    # Local changes go up: flag one as seen, delete one, add one to Sent.
    seen = got[0]
    seen.rename(seen.with_name(seen.name.split(":")[0] + ":2,S"))
    gone = got[1]
    gone.rename(gone.with_name(gone.name.split(":")[0] + ":2,T"))
    (local / "Sent" / "cur").mkdir(parents=True, exist_ok=True)
    (local / "Sent" / "cur" / "1700000000.1.local:2,S").write_bytes(
        message("sent from mbsync"))
    run(["mbsync", "-c", str(rc), "-a"])
    c = imaplib.IMAP4_SSL(imap.host, imap.p993, ssl_context=ctx(),
                          timeout=TIMEOUT)
    c.login(ALICE, PASSWORD)
    typ, data = c.select("INBOX")
    assert data == [b"4"]
    typ, data = c.search(None, "SEEN")
    assert len(data[0].split()) == 1
    typ, data = c.select("Sent")
    assert data == [b"1"]
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    # mbsync adds its own X-TUID header field to what it uploads
    got_msg = re.sub(rb"X-TUID: [^\r\n]*\r\n", b"", data[0][1])
    assert got_msg == message("sent from mbsync")
    # Server changes come down: a new delivery and a server-side flag.
    c.select("INBOX")
    c.store("1", "+FLAGS", "(\\Flagged)")
    c.logout()
    deliver(imap, [message("after first sync")])
    run(["mbsync", "-c", str(rc), "-a"])
    got = files(local / "INBOX")
    assert len(got) == 5
    assert any(b"after first sync" in p.read_bytes() for p in got)
    assert any(p.name.endswith("F") or ",F" in p.name for p in got)
    assert len(imap.maildir_files(ALICE)) == 5


@pytest.mark.skipif(shutil.which("offlineimap") is None,
                    reason="offlineimap missing")
def test_offlineimap_reads_mailbox(imap, tmp_path):
    deliver(imap, [message(f"offline {i}") for i in range(3)])
    local = tmp_path / "Mail"
    local.mkdir()
    conf = tmp_path / "offlineimaprc"
    cert = (imap.data_dir / "tls" / "cert.pem")
    import hashlib
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    fp = hashlib.sha512(der).hexdigest()
    conf.write_text(f"""
[general]
accounts = correo
metadata = {tmp_path}/meta
ui = quiet

[Account correo]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {imap.p993}
remoteuser = {ALICE}
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {fp}
readonly = True
""")
    run(["offlineimap", "-c", str(conf), "-o", "-u", "quiet"])
    got = files(local / "INBOX")
    assert len(got) == 3
    # offlineimap stores LF line ends; the messages are as delivered: our
    # trace fields, then what was sent
    bodies = sorted(p.read_bytes().replace(b"\r\n", b"\n") for p in got)
    for b in bodies:
        assert b.startswith(b"Return-Path: <"), b[:80]
    for i in range(3):
        want = message(f"offline {i}").replace(b"\r\n", b"\n")
        assert sum(b.endswith(want) for b in bodies) == 1, i

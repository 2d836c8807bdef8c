"""Least privilege: bind as root, then run as [server] user."""

import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CORREO_BIN, TIMEOUT, free_port, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_drops_to_configured_user_after_binding():
    nobody = pwd.getpwnam("nobody")
    top = Path(tempfile.mkdtemp(prefix="correo-priv-", dir="/tmp"))
    os.chmod(top, 0o755)
    data = top / "data"
    port = free_port()
    cfg = top / "correo.conf"
    others = "".join(f"[{s}]\nlisten =\n" for s in (
        "submission", "submissions", "imap", "imaps", "pop3", "pop3s"))
    cfg.write_text(f"[server]\nhostname = mx.example.test\n"
                   f"data_dir = {data}\nuser = nobody\n"
                   f"[smtp]\nlisten = 127.0.0.1:{port}\n{others}")
    subprocess.run([CORREO_BIN, "-c", str(cfg), "user", "add",
                    "alice@example.test", "--password-stdin"],
                   input="pw\n", text=True, check=True, capture_output=True)
    log = open(top / "log", "w")
    proc = subprocess.Popen([CORREO_BIN, "-c", str(cfg), "serve"],
                            stderr=log)
    try:
        def up():
            try:
                smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
                return True
            except OSError:
                return False
        wait_until(up, TIMEOUT)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid_line = [l for l in status.splitlines() if l.startswith("Uid:")]
        uids = uid_line[0].split()[1:]
        assert all(int(u) == nobody.pw_uid for u in uids), uid_line
        # The data it writes is nobody's, and delivery works.
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as c:
            c.sendmail("x@remote.test", ["alice@example.test"],
                       b"Subject: p\r\n\r\nbody\r\n")
        new = data / "mail" / "example.test" / "alice" / "new"
        files = list(new.iterdir())
        assert len(files) == 1
        assert files[0].stat().st_uid == nobody.pw_uid
        assert (data / "correo.db").stat().st_uid == nobody.pw_uid
    finally:
        proc.terminate()
        assert proc.wait(TIMEOUT) == 0
        log.close()
        shutil.rmtree(top)


def test_unknown_user_refuses_to_start(tmp_path):
    port = free_port()
    cfg = tmp_path / "correo.conf"
    cfg.write_text(f"[server]\ndata_dir = {tmp_path / 'd'}\n"
                   f"user = no-such-user-correo\n"
                   f"[smtp]\nlisten = 127.0.0.1:{port}\n[submission]\n"
                   f"listen =\n[submissions]\nlisten =\n[imap]\nlisten =\n"
                   f"[imaps]\nlisten =\n[pop3]\nlisten =\n[pop3s]\n"
                   f"listen =\n")
    r = subprocess.run([CORREO_BIN, "-c", str(cfg), "serve"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode != 0
    assert "no-such-user-correo" in r.stderr

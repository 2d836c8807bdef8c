"""The run-time sandbox ([server] sandbox, src/core/sandbox.c): what the
start-up log says, what the kernel reports for every thread, and the key
that turns it off. What it forbids is tested in tests/unit/test_sandbox.c;
that everything else still works is the rest of this suite, which runs
with it on."""

import re
from pathlib import Path

from conftest import SANITIZED


def landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    abi = libc.syscall(444, None, 0, 1)
    return abi if abi > 0 else 0


def thread_status(pid):
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "status").read_text()
        out.append({k: v.strip() for k, v in
                    (l.split(":", 1) for l in text.splitlines() if ":" in l)})
    return out


def test_on_by_default_for_every_thread(server):
    srv = server()
    line = re.search(r"event=sandbox .*", srv.log_text()).group(0)
    assert "no_new_privs=yes" in line, line
    threads = thread_status(srv.proc.pid)
    assert len(threads) > 1                 # workers and the resolver
    for st in threads:
        assert st["NoNewPrivs"] == "1", st
    if SANITIZED:
        assert "seccomp=no" in line and "reason=sanitizer" in line, line
        return
    assert "seccomp=yes" in line, line
    abi = landlock_abi()
    assert (f"landlock=abi{abi}" if abi else "landlock=no") in line, line
    for st in threads:
        assert st["Seccomp"] == "2", st      # SECCOMP_MODE_FILTER


def test_off_by_config(server):
    srv = server(extra={"server": {"sandbox": "no"}})
    assert re.search(r"event=sandbox no_new_privs=no landlock=no seccomp=no "
                     r"reason=config", srv.log_text()), srv.log_text()
    for st in thread_status(srv.proc.pid):
        assert st["Seccomp"] == "0" and st["NoNewPrivs"] == "0", st
    with srv.smtp() as c:
        c.sendmail("x@remote.test", ["alice@example.test"],
                   b"Subject: off\r\n\r\nbody\r\n")
    assert len(srv.maildir_files("alice@example.test")) == 1


def test_bad_value_is_a_configuration_error(server):
    srv = server(start=False, extra={"server": {"sandbox": "maybe"}})
    r = srv.cli("check-config", check=False)
    assert r.returncode != 0
    assert "[server] sandbox" in r.stderr, r.stderr

"""A client that trickles a command one byte at a time gets the same
command timeout as a silent one (RFC 5321 4.5.3.2; slowloris)."""

import time

from conftest import SLOW


def test_trickled_command_times_out(server):
    srv = server(limits={"command_timeout": 2})
    with srv.raw() as c:
        c.greeting()
        t0 = time.monotonic()
        for ch in "NOOP" * 20:
            try:
                c.send(ch)
            except OSError:
                break
            if c.closed(0.4):
                break
        elapsed = time.monotonic() - t0
    # Without the line deadline each byte would reset the read timeout and
    # the 80 bytes would take 32 s; the session ends after about 2 s.
    assert elapsed < 2 + 4 * SLOW, elapsed
    assert "reason=slow-line" in srv.log_text()


def test_trickled_overlong_line_times_out(server):
    srv = server(limits={"command_timeout": 2})
    with srv.raw() as c:
        c.greeting()
        c.send("X" * 1200)
        code, _ = c.reply()
        assert code == 500
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2 + 4 * SLOW:
            try:
                c.send("x")
            except OSError:
                break
            if c.closed(0.4):
                break
        assert c.closed(2 * SLOW)
    assert "reason=slow-line" in srv.log_text()


def test_normal_pace_is_not_cut(server):
    srv = server(limits={"command_timeout": 2})
    with srv.raw() as c:
        c.greeting()
        for _ in range(4):
            time.sleep(1)
            assert c.cmd("NOOP")[0] == 250

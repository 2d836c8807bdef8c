"""`correo queue show` and `correo queue flush [ID]`: what an operator
sees of a queued message, and how it asks for it to be sent now.

Nothing queued here can leave: [delivery] points at ports where nothing
answers, so an attempt fails temporarily and the next waits an hour."""

import os
import re
import time

import pytest

from conftest import TIMEOUT, wait_until
from test_smtp_dsn import dsn, ok, send_data, show, submit  # noqa: F401

ALICE = "alice@example.test"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def queue_one(srv, rcpt="x@remote.test", params=""):
    c = submit(srv)
    ok(c, f"MAIL FROM:<{ALICE}>")
    ok(c, f"RCPT TO:<{rcpt}> {params}".rstrip())
    return send_data(c)


def fields(text):
    """The top-level "key: value" lines of `queue show`."""
    out = {}
    for line in text.splitlines():
        if not line.startswith((" ", "rcpt: ")) and ": " in line:
            k, v = line.split(": ", 1)
            out[k] = v
    return out


def attempted(srv, qid):
    """Waits for the daemon's first (failed) attempt at qid."""
    return wait_until(lambda: "deferred" in show(srv, qid), TIMEOUT * 2)


def flush_file(srv):
    return srv.data_dir / "queue" / "flush"


def test_flush_empty_queue(dsn):
    r = dsn.cli("queue", "flush")
    assert r.stdout == "flushed 0 message(s)\n"
    assert r.stderr == ""


def test_flush_unknown_id(dsn):
    for bad in ("0123456789abcdef", "nonsense", "../../etc/passwd"):
        r = dsn.cli("queue", "flush", bad, check=False)
        assert r.returncode == 1, bad
        assert r.stdout == ""
        assert r.stderr.count("\n") == 1 and bad in r.stderr


def test_flush_usage(dsn):
    r = dsn.cli("queue", "flush", "a", "b", check=False)
    assert r.returncode == 2


def test_show_after_a_failed_attempt(dsn):
    qid = queue_one(dsn, params="NOTIFY=FAILURE,DELAY "
                    "ORCPT=rfc822;x@remote.test")
    if not attempted(dsn, qid):
        pytest.skip("the scheduler made no attempt")
    text = show(dsn, qid)
    lines = text.splitlines()
    assert "rcpt: <x@remote.test> deferred" in lines
    f = fields(text)
    assert f["id"] == qid
    assert f["from"] == f"<{ALICE}>"
    assert int(f["attempts"]) >= 1
    assert re.fullmatch(ISO, f["next-attempt"]), f
    rcpt = [l.strip() for l in lines if l.startswith("  ")]
    keys = {l.split(": ", 1)[0]: l.split(": ", 1)[1] for l in rcpt}
    assert re.fullmatch(r"4\.\d+\.\d+", keys["status"]), keys
    assert "refused" in keys["diagnostic"].lower(), keys
    assert re.fullmatch(ISO, keys["last-attempt"]), keys
    assert keys["notify"] == "FAILURE,DELAY"
    assert keys["orcpt"] == "rfc822;x@remote.test"
    # Every line is printable: nothing from the wire reaches the terminal
    # raw.
    assert all(c.isprintable() for l in lines for c in l), text


def test_show_unknown_id(dsn):
    r = dsn.cli("queue", "show", "0123456789abcdef", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_show_before_any_attempt(dsn):
    qid = queue_one(dsn)
    dsn.stop()
    # An envelope written by the SMTP server alone: nothing tried yet.
    env = dsn.data_dir / "queue" / "env" / qid
    text = env.read_text()
    text = re.sub(r"(?m)^(attempts|next) .*\n", "", text)
    text = re.sub(r"(?m)^rcpt2 .*\n", "rcpt pending 0 <x@remote.test>\n",
                  text)
    env.write_text(text)
    out = show(dsn, qid)
    assert "rcpt: <x@remote.test> pending" in out.splitlines()
    f = fields(out)
    assert f["attempts"] == "0"
    assert f["next-attempt"] == "now"


def test_flush_one_and_all_while_stopped(dsn):
    q1 = queue_one(dsn, "one@remote.test")
    q2 = queue_one(dsn, "two@elsewhere.test")
    got = attempted(dsn, q1) and attempted(dsn, q2)
    dsn.stop()
    if not got:
        # No scheduler: give the envelopes a next attempt by hand.
        for q in (q1, q2):
            env = dsn.data_dir / "queue" / "env" / q
            text = re.sub(r"(?m)^next .*\n", "", env.read_text())
            env.write_text(text.replace("\nfrom ", "\nnext 4102444800\nfrom ",
                                        1))
    for q in (q1, q2):
        assert fields(show(dsn, q))["next-attempt"] != "now"
    before = show(dsn, q2)

    t0 = time.time()
    r = dsn.cli("queue", "flush", q1)
    assert r.stdout == "flushed 1 message(s)\n"
    assert fields(show(dsn, q1))["next-attempt"] == "now"
    assert show(dsn, q2) == before
    st = flush_file(dsn).stat()
    assert st.st_mtime >= t0 - 2
    # What the attempt learnt is kept.
    if got:
        assert "rcpt: <one@remote.test> deferred" in show(dsn, q1)
        assert fields(show(dsn, q1))["attempts"] != "0"

    # Flushing again is fine, and moves the flush file's time on.
    os.utime(flush_file(dsn), (1000, 1000))
    r = dsn.cli("queue", "flush")
    assert r.stdout == "flushed 2 message(s)\n"
    assert flush_file(dsn).stat().st_mtime > 1000
    for q in (q1, q2):
        assert fields(show(dsn, q))["next-attempt"] == "now"
    # list keeps its one-line format.
    lines = dsn.cli("queue", "list").stdout.splitlines()
    assert sorted(l.split()[0] for l in lines) == sorted([q1, q2])
    assert all(re.fullmatch(r"[0-9a-f]{16} %s \d+ <%s>( <[^>]+>)+"
                            % (ISO, ALICE), l) for l in lines), lines


def test_flush_skips_a_message_whose_file_is_gone(dsn):
    q = queue_one(dsn)
    got = attempted(dsn, q)
    dsn.stop()
    if not got:
        pytest.skip("the scheduler made no attempt")
    (dsn.data_dir / "queue" / "msg" / q).unlink()
    r = dsn.cli("queue", "flush", q, check=False)
    assert r.returncode == 1


def test_flush_asks_the_running_daemon(dsn):
    qid = queue_one(dsn)
    if not attempted(dsn, qid):
        pytest.skip("the scheduler made no attempt")
    n = int(fields(show(dsn, qid))["attempts"])
    assert dsn.cli("queue", "flush").stdout == "flushed 1 message(s)\n"
    assert wait_until(
        lambda: int(fields(show(dsn, qid))["attempts"]) > n,
        TIMEOUT * 2), show(dsn, qid)
    assert "event=queue-flush" in dsn.log_text()
    # And once more, now that the flush file exists.
    n = int(fields(show(dsn, qid))["attempts"])
    time.sleep(0.05)
    assert dsn.cli("queue", "flush", qid).stdout == "flushed 1 message(s)\n"
    assert wait_until(
        lambda: int(fields(show(dsn, qid))["attempts"]) > n,
        TIMEOUT * 2), show(dsn, qid)

"""Outbound delivery: the queue, MX routing through a real DNS server
(unbound on loopback with a test zone), retries, expiry and RFC 3464
reports, against real peers: Postfix's smtp-sink and a second correo.

Every peer listens on the same port (the sender's [delivery] remote_port)
on a different loopback address; the zone's A records pick the address:

    127.0.0.1  the second correo ("peer", users at other.test)
    127.0.0.2  smtp-sink (when a test starts one)
    127.0.0.5  nothing: connection refused
"""

import email
import os
import shutil
import signal
import subprocess
import time

import pytest

import dnszone
from conftest import PASSWORD, TIMEOUT, wait_until

SINK = "/usr/sbin/smtp-sink"
ALICE = "alice@example.test"

pytestmark = pytest.mark.skipif(
    not dnszone.available() or not os.access(SINK, os.X_OK),
    reason="unbound or smtp-sink missing")


ZONE = [
    "other.test. MX 10 mx.other.test.",
    "mx.other.test. A 127.0.0.1",
    # preference order: the first MX refuses connections
    "pref.test. MX 10 dead.pref.test.",
    "pref.test. MX 20 sink.pref.test.",
    "dead.pref.test. A 127.0.0.5",
    "sink.pref.test. A 127.0.0.2",
    # no MX: the A record is the implicit MX (RFC 5321 5.1)
    "amx.test. A 127.0.0.2",
    # null MX (RFC 7505)
    "nullmx.test. MX 0 .",
    # only a dead server
    "down.test. MX 10 mx.down.test.",
    "mx.down.test. A 127.0.0.5",
    # the sink again, for the retry tests
    "sink.test. MX 10 mx.sink.test.",
    "mx.sink.test. A 127.0.0.2",
    # an IPv6-only MX
    "six.test. MX 10 mx.six.test.",
    "mx.six.test. AAAA ::1",
]


class Sink:
    """smtp-sink on 127.0.0.2:port (or addr) writing each message to a
    file."""

    def __init__(self, root, port, *opts, addr="127.0.0.2"):
        self.dir = root / ("sink-%d" % time.monotonic_ns())
        self.dir.mkdir()
        where = "[%s]:%d" % (addr, port) if ":" in addr else \
            "%s:%d" % (addr, port)
        self.proc = subprocess.Popen(
            [SINK, "-u", "root", "-R", str(self.dir), "-d", "msg.%H%M%S."]
            + list(opts) + [where, "50"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(self._up(addr, port), TIMEOUT)

    @staticmethod
    def _up(addr, port):
        import socket

        def check():
            try:
                with socket.create_connection((addr, port), 0.2):
                    return True
            except OSError:
                return False
        return check

    def messages(self):
        return [p.read_bytes() for p in sorted(self.dir.glob("msg.*"))]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=5)


@pytest.fixture
def net(server, tmp_path):
    """The zone, the peer correo and a sender factory."""
    zone_dir = tmp_path / "zone"
    zone_dir.mkdir()
    port, stop = dnszone.start(ZONE, str(zone_dir))
    try:
        peer = server(users=["carol@other.test"], hostname="mx.other.test")
    except BaseException:
        stop()
        raise
    sinks = []

    class Net:
        pass

    n = Net()
    n.peer = peer
    n.port = peer.port
    n.resolver = dnszone.resolver(port)

    def sender(delivery=None, aliases=None, **kw):
        d = {"resolver": n.resolver, "remote_port": peer.port,
             "retry_min": "1s", "retry_max": "2s"}
        d.update(delivery or {})
        extra = kw.pop("extra", {})
        extra["delivery"] = d
        return server(extra=extra, aliases=aliases or {}, **kw)

    def sink(*opts, addr="127.0.0.2"):
        s = Sink(tmp_path, peer.port, *opts, addr=addr)
        sinks.append(s)
        return s

    n.sender = sender
    n.sink = sink
    try:
        yield n
    finally:
        for s in sinks:
            s.stop()
        stop()


def submit(srv, rcpt, subject="outbound", sender=ALICE, body="hello\r\n",
           mail_opts=(), rcpt_opts=()):
    msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n"
           f"\r\n{body}").encode("utf-8")
    with srv.smtp() as c:
        c.ehlo()
        assert c.sendmail(sender, [rcpt], msg, list(mail_opts),
                          list(rcpt_opts)) == {}


def forward(srv, target, **kw):
    """Mail to fwd@example.test, an alias for target (so port 25 queues it
    without AUTH)."""
    submit(srv, "fwd@example.test", **kw)


def reports(srv, addr=ALICE):
    out = []
    for p in srv.maildir_files(addr):
        m = email.message_from_bytes(p.read_bytes())
        if m.get_content_type() == "multipart/report":
            out.append(m)
    return out


def report_fields(m):
    """The per-recipient fields of a delivery-status part, as a dict."""
    for part in m.walk():
        if part.get_content_type() in ("message/delivery-status",
                                       "message/global-delivery-status"):
            payload = part.get_payload()
            text = "".join(p.as_string() if hasattr(p, "as_string") else
                           str(p) for p in payload) \
                if isinstance(payload, list) else payload
            fields = {}
            for line in text.splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    fields.setdefault(k.strip().lower(), v.strip())
            return fields
    raise AssertionError("no delivery-status part")


def queue_empty(srv):
    return wait_until(lambda: not list((srv.data_dir / "queue" / "env")
                                       .glob("*")), TIMEOUT * 2)


# ---- delivery --------------------------------------------------------------

def test_delivery_to_a_second_correo_by_mx(net):
    srv = net.sender(aliases={"fwd@example.test": "carol@other.test"})
    forward(srv, "carol@other.test", subject="to carol")
    assert wait_until(lambda: net.peer.maildir_files("carol@other.test"),
                      TIMEOUT * 2), srv.log_text()
    data = net.peer.maildir_files("carol@other.test")[0].read_bytes()
    assert b"Subject: to carol" in data
    # STARTTLS to the peer: its Received: header says ESMTPS
    assert b"with ESMTPS" in data, data[:600]
    assert queue_empty(srv)
    assert reports(srv) == []


def test_mx_preference_order_and_fallback_to_next_mx(net):
    sink = net.sink()
    srv = net.sender(aliases={"fwd@example.test": "x@pref.test"})
    forward(srv, "x@pref.test", subject="pref")
    assert wait_until(sink.messages, TIMEOUT * 2), srv.log_text()
    assert b"Subject: pref" in sink.messages()[0]
    assert queue_empty(srv)
    log = srv.log_text()
    assert "127.0.0.5" in log or "dead.pref.test" in log


def test_no_mx_falls_back_to_the_address_record(net):
    sink = net.sink()
    srv = net.sender(aliases={"fwd@example.test": "y@amx.test"})
    forward(srv, "y@amx.test", subject="implicit mx")
    assert wait_until(sink.messages, TIMEOUT * 2), srv.log_text()
    assert queue_empty(srv)


def test_null_mx_bounces_at_once(net):
    srv = net.sender(aliases={"fwd@example.test": "z@nullmx.test"})
    forward(srv, "z@nullmx.test", subject="null mx")
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] == "failed"
    assert f["status"] == "5.1.10"
    assert "z@nullmx.test" in f["final-recipient"]
    assert queue_empty(srv)


def test_unknown_domain_bounces(net):
    srv = net.sender(aliases={"fwd@example.test": "q@nosuchdomain.test"})
    forward(srv, "q@nosuchdomain.test", subject="nxdomain")
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] == "failed" and f["status"].startswith("5.")


def test_5xx_bounces_with_an_rfc3464_report(net):
    net.sink("-B", "550 5.1.1 No such user here", "-f", "RCPT")
    srv = net.sender(aliases={"fwd@example.test": "nobody@sink.test"})
    forward(srv, "nobody@sink.test", subject="will bounce")
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    m = reports(srv)[0]
    assert m["From"].lower().find("mailer-daemon@") >= 0
    assert m["Auto-Submitted"] == "auto-replied"
    assert m.get_param("report-type") == "delivery-status"
    f = report_fields(m)
    assert f["action"] == "failed"
    assert f["status"].startswith("5.")
    assert f["diagnostic-code"].lower().startswith("smtp; 5")
    assert "remote-mta" in f
    # the original comes back
    assert b"Subject: will bounce" in reports(srv)[0].as_bytes()
    assert queue_empty(srv)


def test_null_sender_never_gets_a_bounce(net):
    net.sink("-f", "RCPT")
    srv = net.sender(aliases={"fwd@example.test": "nobody@sink.test"})
    msg = b"From: <>\r\nSubject: from null\r\n\r\nx\r\n"
    with srv.smtp() as c:
        assert c.sendmail("<>", ["fwd@example.test"], msg) == {}
    assert queue_empty(srv)
    time.sleep(0.5)
    assert srv.all_maildir_files() == []


def test_4xx_is_retried_then_delivered(net):
    soft = net.sink("-r", "RCPT")
    srv = net.sender(aliases={"fwd@example.test": "r@sink.test"})
    forward(srv, "r@sink.test", subject="retry me")
    assert wait_until(lambda: "status=deferred" in srv.log_text(),
                      TIMEOUT * 2), srv.log_text()
    assert list((srv.data_dir / "queue" / "env").glob("*"))
    soft.stop()
    ok = net.sink()
    assert wait_until(ok.messages, TIMEOUT * 3), srv.log_text()
    assert b"Subject: retry me" in ok.messages()[0]
    assert queue_empty(srv)
    assert reports(srv) == []


def test_expiry_bounces_with_4_4_7(net):
    srv = net.sender(aliases={"fwd@example.test": "e@down.test"},
                     delivery={"max_lifetime": "3s"})
    forward(srv, "e@down.test", subject="expires")
    assert wait_until(lambda: reports(srv), TIMEOUT * 3), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] == "failed"
    assert f["status"] == "4.4.7"
    assert queue_empty(srv)


def test_delay_warning_once(net):
    srv = net.sender(aliases={"fwd@example.test": "d@down.test"},
                     delivery={"delay_warning": "1s", "retry_max": "1s"})
    forward(srv, "d@down.test", subject="slow")
    assert wait_until(lambda: reports(srv), TIMEOUT * 3), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] == "delayed"
    assert f["status"].startswith("4.")
    time.sleep(3)
    assert len(reports(srv)) == 1
    assert list((srv.data_dir / "queue" / "env").glob("*"))


def test_success_notice_when_asked(net):
    net.sink("-N")      # a peer without DSN: the notice says "relayed"
    srv = net.sender(aliases={"fwd@example.test": "s@sink.test"})
    forward(srv, "s@sink.test", subject="tell me",
            rcpt_opts=["NOTIFY=SUCCESS"])
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] in ("relayed", "delivered")


def test_restart_in_the_middle_of_a_queue(net):
    srv = net.sender(aliases={"fwd@example.test": "w@sink.test"},
                     delivery={"retry_min": "1h", "retry_max": "1h"})
    for i in range(3):
        forward(srv, "w@sink.test", subject="queued %d" % i)
    assert wait_until(lambda: srv.log_text().count("status=deferred") +
                      srv.log_text().count("left=1") >= 3, TIMEOUT * 2)
    srv.stop()
    sink = net.sink()
    # `queue flush` while stopped makes every message due at the start
    out = srv.cli("queue", "flush").stdout
    assert "3" in out
    srv.start()
    assert wait_until(lambda: len(sink.messages()) == 3, TIMEOUT * 3), \
        srv.log_text()
    assert queue_empty(srv)


def test_kill_9_during_delivery_loses_nothing(net):
    slow = net.sink("-w", "3")     # waits before answering the dot
    srv = net.sender(aliases={"fwd@example.test": "k@sink.test"},
                     delivery={"retry_min": "1s"})
    forward(srv, "k@sink.test", subject="crash")
    assert wait_until(lambda: "delivery-start" in srv.log_text(),
                      TIMEOUT * 2)
    time.sleep(0.5)
    srv.kill9()
    slow.stop()
    ok = net.sink()
    srv.start()
    assert wait_until(ok.messages, TIMEOUT * 3), srv.log_text()
    assert queue_empty(srv)


def test_etrn_flushes_a_domain(net):
    srv = net.sender(aliases={"fwd@example.test": "t@sink.test"},
                     delivery={"retry_min": "1h", "retry_max": "1h"})
    forward(srv, "t@sink.test", subject="etrn")
    assert wait_until(lambda: "left=1" in srv.log_text(), TIMEOUT * 2), \
        srv.log_text()
    sink = net.sink()
    time.sleep(1)
    assert sink.messages() == []
    with srv.raw() as c:
        c.reply()
        c.send("EHLO client.example.net\r\n")
        c.reply()
        c.send("ETRN sink.test\r\n")
        code, _ = c.reply()
        assert code == 250
        c.send("ETRN nothing-here.test\r\n")
        code, _ = c.reply()
        assert code == 251
        c.send("QUIT\r\n")
    assert wait_until(sink.messages, TIMEOUT * 2), srv.log_text()


def test_relayhost_with_auth(net):
    """Everything goes to the relayhost: the peer's submission port, with
    AUTH after STARTTLS."""
    from conftest import free_port
    sub = free_port()
    relay = net.peer
    relay.stop()
    text = relay.cfg.read_text().replace(
        "[submission]\nlisten = \n",
        "[submission]\nlisten = 127.0.0.1:%d\n" % sub)
    relay.cfg.write_text(text)
    relay.start()
    srv = net.sender(aliases={"fwd@example.test": "carol@other.test"},
                     delivery={"relayhost": "127.0.0.1:%d" % sub,
                               "relay_user": "carol@other.test",
                               "relay_password": PASSWORD})
    forward(srv, "carol@other.test", subject="via relay",
            sender="carol@other.test")
    assert wait_until(lambda: relay.maildir_files("carol@other.test"),
                      TIMEOUT * 2), srv.log_text() + relay.log_text()
    data = relay.maildir_files("carol@other.test")[0].read_bytes()
    assert b"Subject: via relay" in data
    assert b"ESMTPSA" in data


def test_8bit_to_a_peer_without_8bitmime_bounces(net):
    """No 7-bit downgrade: the sender gets a 5.6.3 report (RFC 6152)."""
    net.sink("-e")      # no ESMTP: HELO only, so no 8BITMIME
    srv = net.sender(aliases={"fwd@example.test": "u@sink.test"})
    forward(srv, "u@sink.test", subject="eight bit",
            body="caf\u00e9\r\n", mail_opts=["BODY=8BITMIME"])
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] == "failed" and f["status"] == "5.6.3"
    assert queue_empty(srv)


def test_several_recipients_domains_and_outcomes_in_one_message(net):
    """One message, three domains: delivered, bounced (null MX) and
    deferred (down): one report lists the failure; the deferred one stays
    queued alone."""
    sink = net.sink()
    srv = net.sender(aliases={"fwd@example.test":
                              "a@sink.test,b@nullmx.test,c@down.test"},
                     delivery={"retry_min": "1h", "retry_max": "1h"})
    forward(srv, "x", subject="three ways")
    assert wait_until(sink.messages, TIMEOUT * 2), srv.log_text()
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert "b@nullmx.test" in f["final-recipient"]
    listing = srv.cli("queue", "list").stdout
    assert "<c@down.test>" in listing and "<a@sink.test>" not in listing
    assert "<b@nullmx.test>" not in listing


def test_one_connection_carries_several_messages(net):
    """Messages due for the same destination ride on the session of the
    attempt that reached it (max_per_destination 1: one session)."""
    srv = net.sender(aliases={"fwd@example.test": "many@sink.test"},
                     delivery={"retry_min": "1h", "retry_max": "1h",
                               "max_per_destination": "1"})
    for i in range(5):
        forward(srv, "many@sink.test", subject="batch %d" % i)
    assert wait_until(lambda: srv.log_text().count("left=1") >= 5,
                      TIMEOUT * 3), srv.log_text()
    sink = net.sink()
    srv.cli("queue", "flush")
    assert wait_until(lambda: len(sink.messages()) == 5, TIMEOUT * 3), \
        srv.log_text()
    assert queue_empty(srv)
    log = srv.log_text()
    reused = sum(int(x) for x in
                 __import__("re").findall(r"event=connection-reuse .*"
                                          r"messages=(\d+)", log))
    assert reused >= 3, log
    # after the flush: fewer sessions (one policy decision each) than
    # messages
    after = log[log.index("event=queue-flush"):]
    assert after.count("event=tls-policy") <= 2, after


def test_ipv6_mx(net):
    sink = net.sink(addr="::1")
    srv = net.sender(aliases={"fwd@example.test": "v@six.test"})
    forward(srv, "v@six.test", subject="over six")
    assert wait_until(sink.messages, TIMEOUT * 2), srv.log_text()
    assert b"Subject: over six" in sink.messages()[0]
    assert "ip=::1" in srv.log_text()


def test_smtputf8_to_a_peer_without_it_bounces(net):
    """RFC 6531: mail that needs SMTPUTF8 is not sent to a peer without
    it: the sender gets a 5.6.7 report."""
    net.sink("-e")      # no ESMTP at all
    srv = net.sender(aliases={"fwd@example.test": "w@sink.test"})
    msg = ("From: <%s>\r\nSubject: caf\u00e9\r\n\r\nx\r\n" % ALICE)
    with srv.smtp() as c:
        c.ehlo()
        assert c.sendmail(ALICE, ["fwd@example.test"], msg.encode(),
                          ["SMTPUTF8", "BODY=8BITMIME"]) == {}
    assert wait_until(lambda: reports(srv), TIMEOUT * 2), srv.log_text()
    f = report_fields(reports(srv)[0])
    assert f["action"] == "failed" and f["status"] == "5.6.7", f


def test_local_delivery_success_notice(server):
    """RFC 3461: NOTIFY=SUCCESS for a local recipient gets a "delivered"
    report once the message is in the mailbox; without it, none."""
    srv = server()
    submit(srv, "bob@example.test", subject="notify me",
           mail_opts=["RET=HDRS", "ENVID=env42"],
           rcpt_opts=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@example.test"])
    assert wait_until(lambda: reports(srv), TIMEOUT), srv.log_text()
    m = reports(srv)[0]
    f = report_fields(m)
    assert f["action"] == "delivered" and f["status"] == "2.0.0", f
    assert "bob@example.test" in f["final-recipient"]
    assert "bob@example.test" in f.get("original-recipient", "")
    assert b"env42" in m.as_bytes()
    submit(srv, "bob@example.test", subject="quiet")
    time.sleep(0.5)
    assert len(reports(srv)) == 1

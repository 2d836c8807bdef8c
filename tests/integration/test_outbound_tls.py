"""Outbound TLS policy: DANE (RFC 7672) against a DNSSEC-signed zone,
MTA-STS (RFC 8461) against an HTTPS policy server, and opportunistic
STARTTLS when neither applies.

The peer is a second correo on 127.0.0.1 whose certificate is issued by a
test CA for mx.sts.test only; the sender trusts that CA ([delivery]
tls_ca_file), validates DNSSEC with the signed zone's DS records
([delivery] dnssec_trust_anchor) and fetches MTA-STS policies from a
Python HTTPS server on [delivery] mta_sts_port.

    dane.test            signed, MX mx.dane.test, TLSA 3 1 1 of the peer
    bad.dane.test        signed, MX mxbad.dane.test, a TLSA that matches
                         nothing
    notlsa.dane.test     signed, MX mxplain.dane.test, no TLSA (a secure
                         denial: no DANE)
    bogus.dane.test      signed, MX mxbogus.dane.test whose TLSA RRSIG is
                         spoilt (bogus: the host is unusable)
    sts.test             MTA-STS enforce, mx mx.sts.test (the peer's name)
    stsbad.test          enforce, MX mx.stsbad.test: not the certificate's
    stsmx.test           enforce, but the policy lists another MX
    ststesting.test      testing, MX mx.ststesting.test (name mismatch)
"""

import http.server
import os
import ssl
import subprocess
import threading

import pytest

import dnszone
from conftest import TIMEOUT, free_port, wait_until
from test_outbound import forward, queue_empty

pytestmark = pytest.mark.skipif(
    not dnszone.available() or not dnszone.signing_available(),
    reason="unbound or the ldns tools (ldnsutils) missing")

PEER_USERS = ["carol@dane.test", "carol@bad.dane.test",
              "carol@notlsa.dane.test", "carol@bogus.dane.test",
              "carol@sts.test", "carol@stsbad.test", "carol@stsmx.test",
              "carol@ststesting.test", "carol@other.test"]

POLICIES = {
    "sts.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\n"
                "max_age: 86400\r\n",
    "stsbad.test": "version: STSv1\nmode: enforce\nmx: *.stsbad.test\n"
                   "max_age: 86400\n",
    "stsmx.test": "version: STSv1\nmode: enforce\nmx: mail.elsewhere.test\n"
                  "max_age: 86400\n",
    "ststesting.test": "version: STSv1\nmode: testing\n"
                       "mx: mx.ststesting.test\nmax_age: 86400\n",
}


def openssl(*args, cwd, input=None):
    return subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                          capture_output=True, input=input).stdout


def make_pki(d):
    """A test CA, the peer's certificate (mx.sts.test) and the policy
    server's (mta-sts.* of every domain). Returns a dict of paths and the
    peer key's SHA2-256 SubjectPublicKeyInfo digest (TLSA 3 1 1)."""
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=correo test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)

    def leaf(name, sans):
        openssl("req", "-new", *ec, "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + sans[0], "-addext",
                "subjectAltName=" + ",".join("DNS:" + s for s in sans),
                cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-copy_extensions", "copy", "-out", name + ".pem", cwd=d)

    leaf("peer", ["mx.sts.test"])
    leaf("https", ["mta-sts." + dom for dom in POLICIES])
    pub = openssl("x509", "-in", "peer.pem", "-pubkey", "-noout", cwd=d)
    der = openssl("pkey", "-pubin", "-outform", "DER", cwd=d, input=pub)
    digest = openssl("dgst", "-sha256", "-binary", cwd=d, input=der)
    return {"ca": d / "ca.pem", "peer_cert": d / "peer.pem",
            "peer_key": d / "peer.key", "https_cert": d / "https.pem",
            "https_key": d / "https.key", "tlsa": digest.hex()}


class PolicyServer:
    """HTTPS on 127.0.0.1: /.well-known/mta-sts.txt by Host header."""

    def __init__(self, pki):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                outer.requests.append((host, self.path))
                dom = host[len("mta-sts."):] if host.startswith(
                    "mta-sts.") else ""
                body = POLICIES.get(dom)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                     Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki["https_cert"]), str(pki["https_key"]))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def zones(port, tlsa):
    plain = ["other.test. MX 10 mx.other.test.",
             "mx.other.test. A 127.0.0.1"]
    for dom in POLICIES:
        plain += ["%s. MX 10 mx.%s." % (dom, dom),
                  "mx.%s. A 127.0.0.1" % dom,
                  "mta-sts.%s. A 127.0.0.1" % dom,
                  '_mta-sts.%s. TXT "v=STSv1; id=20260101T000000;"' % dom]
    signed = [
        "dane.test. MX 10 mx.dane.test.",
        "mx.dane.test. A 127.0.0.1",
        "_%d._tcp.mx.dane.test. TLSA 3 1 1 %s" % (port, tlsa),
        "bad.dane.test. MX 10 mxbad.dane.test.",
        "mxbad.dane.test. A 127.0.0.1",
        "_%d._tcp.mxbad.dane.test. TLSA 3 1 1 %s" % (port, "00" * 32),
        "notlsa.dane.test. MX 10 mxplain.dane.test.",
        "mxplain.dane.test. A 127.0.0.1",
        "bogus.dane.test. MX 10 mxbogus.dane.test.",
        "mxbogus.dane.test. A 127.0.0.1",
        "_%d._tcp.mxbogus.dane.test. TLSA 3 1 1 %s" % (port, tlsa),
    ]
    return plain, {"dane.test": signed}


@pytest.fixture
def tnet(server, tmp_path):
    pki = make_pki(tmp_path / "pki")
    peer = server(users=PEER_USERS, hostname="mx.sts.test",
                  extra={"tls": {"cert": pki["peer_cert"],
                                 "key": pki["peer_key"]}})
    plain, signed = zones(peer.port, pki["tlsa"])
    zone_dir = tmp_path / "zone"
    zone_dir.mkdir()
    dns_port, stop_dns = dnszone.start(
        plain, str(zone_dir), signed=signed,
        corrupt=["_%d._tcp.mxbogus.dane.test" % peer.port])
    https = PolicyServer(pki)

    class Net:
        pass

    n = Net()
    n.peer = peer
    n.https = https

    def sender(rcpt, delivery=None):
        d = {"resolver": dnszone.resolver(dns_port),
             "remote_port": peer.port, "retry_min": "1s",
             "retry_max": "2s", "mta_sts_port": https.port,
             "tls_ca_file": pki["ca"],
             "dnssec_trust_anchor": dnszone.anchor_file(zone_dir)}
        d.update(delivery or {})
        return server(extra={"delivery": d},
                      aliases={"fwd@example.test": rcpt})

    n.sender = sender
    yield n
    https.stop()
    stop_dns()


def delivered(peer, rcpt, subject):
    def check():
        return any(("Subject: " + subject).encode() in p.read_bytes()
                   for p in peer.maildir_files(rcpt))
    return wait_until(check, TIMEOUT * 2)


def deferred(srv):
    return wait_until(lambda: "left=1" in srv.log_text(), TIMEOUT * 2)


def policy_lines(srv):
    return [l for l in srv.log_text().splitlines()
            if "event=tls-policy " in l]


# ---- DANE --------------------------------------------------------------

def test_dane_matching_tlsa_delivers_with_verified_tls(tnet):
    srv = tnet.sender("carol@dane.test")
    forward(srv, "carol@dane.test", subject="dane ok")
    assert delivered(tnet.peer, "carol@dane.test", "dane ok"), \
        srv.log_text()
    assert queue_empty(srv)
    lines = policy_lines(srv)
    assert any("policy=dane tls=verify tlsa=1" in l and
               "result=connect" in l for l in lines), lines
    assert "auth=dane" in srv.log_text()


def test_dane_wrong_tlsa_defers_and_sends_nothing(tnet):
    srv = tnet.sender("carol@bad.dane.test")
    forward(srv, "carol@bad.dane.test", subject="dane bad")
    assert deferred(srv), srv.log_text()
    log = srv.log_text()
    assert "policy=dane tls=verify" in log
    assert "not verified" in log
    assert "retry-without-tls" not in log
    assert tnet.peer.maildir_files("carol@bad.dane.test") == []
    assert list((srv.data_dir / "queue" / "env").glob("*"))


def test_dane_secure_denial_falls_back_to_opportunistic(tnet):
    srv = tnet.sender("carol@notlsa.dane.test")
    forward(srv, "carol@notlsa.dane.test", subject="no tlsa")
    assert delivered(tnet.peer, "carol@notlsa.dane.test", "no tlsa"), \
        srv.log_text()
    assert any("host=mxplain.dane.test" in l and
               "policy=opportunistic" in l for l in policy_lines(srv))


def test_dane_bogus_tlsa_makes_the_host_unusable(tnet):
    srv = tnet.sender("carol@bogus.dane.test")
    forward(srv, "carol@bogus.dane.test", subject="bogus")
    assert deferred(srv), srv.log_text()
    assert any("policy=dane" in l and "result=skip-host" in l
               for l in policy_lines(srv)), srv.log_text()
    assert tnet.peer.maildir_files("carol@bogus.dane.test") == []


def test_unsigned_domain_stays_opportunistic(tnet):
    srv = tnet.sender("carol@other.test")
    forward(srv, "carol@other.test", subject="plain")
    assert delivered(tnet.peer, "carol@other.test", "plain"), \
        srv.log_text()
    data = tnet.peer.maildir_files("carol@other.test")[0].read_bytes()
    assert b"with ESMTPS" in data
    assert any("host=mx.other.test" in l and "policy=opportunistic" in l
               for l in policy_lines(srv))


# ---- MTA-STS -----------------------------------------------------------

def test_mta_sts_enforce_with_matching_certificate_delivers(tnet):
    srv = tnet.sender("carol@sts.test")
    forward(srv, "carol@sts.test", subject="sts ok")
    assert delivered(tnet.peer, "carol@sts.test", "sts ok"), srv.log_text()
    lines = policy_lines(srv)
    assert any("policy=mta-sts tls=verify" in l and "mode=enforce" in l
               and "mx-match=yes" in l for l in lines), lines
    assert "auth=pkix" in srv.log_text()
    assert ("mta-sts.sts.test", "/.well-known/mta-sts.txt") in \
        tnet.https.requests
    # a second message uses the cached policy: no second fetch
    forward(srv, "carol@sts.test", subject="sts again")
    assert delivered(tnet.peer, "carol@sts.test", "sts again")
    assert tnet.https.requests.count(
        ("mta-sts.sts.test", "/.well-known/mta-sts.txt")) == 1
    assert "source=cache" in srv.log_text()


def test_mta_sts_enforce_with_certificate_of_another_name_defers(tnet):
    srv = tnet.sender("carol@stsbad.test")
    forward(srv, "carol@stsbad.test", subject="sts bad")
    assert deferred(srv), srv.log_text()
    log = srv.log_text()
    assert "policy=mta-sts tls=verify" in log
    assert "not verified" in log
    assert "retry-without-tls" not in log
    assert tnet.peer.maildir_files("carol@stsbad.test") == []


def test_mta_sts_enforce_skips_mx_hosts_not_in_the_policy(tnet):
    srv = tnet.sender("carol@stsmx.test")
    forward(srv, "carol@stsmx.test", subject="sts mx")
    assert deferred(srv), srv.log_text()
    assert any("policy=mta-sts" in l and "mx-match=no" in l and
               "result=skip-host" in l for l in policy_lines(srv))
    assert "smtp-client" not in srv.log_text()
    assert tnet.peer.maildir_files("carol@stsmx.test") == []


def test_mta_sts_testing_mode_delivers_and_logs(tnet):
    srv = tnet.sender("carol@ststesting.test")
    forward(srv, "carol@ststesting.test", subject="sts testing")
    assert delivered(tnet.peer, "carol@ststesting.test", "sts testing"), \
        srv.log_text()
    assert any("policy=mta-sts tls=opportunistic" in l and
               "mode=testing" in l for l in policy_lines(srv)), \
        srv.log_text()
    # the certificate names mx.sts.test, not mx.ststesting.test
    assert "auth=none" in srv.log_text()


def test_mta_sts_policy_fetch_failure_means_no_policy(tnet):
    """An unreachable policy server: delivery goes on as without MTA-STS
    (RFC 8461 3.3), and the failure is logged."""
    srv = tnet.sender("carol@sts.test",
                      delivery={"mta_sts_port": free_port()})
    forward(srv, "carol@sts.test", subject="no fetch")
    assert delivered(tnet.peer, "carol@sts.test", "no fetch"), \
        srv.log_text()
    assert "event=mta-sts-fetch" in srv.log_text()
    assert any("policy=opportunistic" in l and "host=mx.sts.test" in l
               for l in policy_lines(srv))


def test_mta_sts_certificate_of_policy_host_must_verify(tnet):
    """Without the test CA the policy server is not trusted: no policy."""
    srv = tnet.sender("carol@stsbad.test", delivery={"tls_ca_file": ""})
    forward(srv, "carol@stsbad.test", subject="untrusted policy")
    assert delivered(tnet.peer, "carol@stsbad.test", "untrusted policy"), \
        srv.log_text()
    assert "certificate not verified" in srv.log_text()

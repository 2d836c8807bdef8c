"""Real clients against correo's TLS and SASL: the gsasl command-line client
(SCRAM-SHA-256 and -PLUS with tls-exporter), msmtp as a user's mail client
on 465 and 587, and openssl s_client for STARTTLS, STLS and implicit TLS."""

import subprocess

import pytest

from conftest import PASSWORD, TIMEOUT, free_port

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
def srv(server):
    ports = {k: free_port() for k in ("submission", "submissions", "pop3",
                                      "pop3s")}
    s = server(extra={k: {"listen": f"127.0.0.1:{p}"}
                      for k, p in ports.items()})
    s.ports = ports
    return s


def gsasl(srv, mech, password, cb=True):
    args = ["gsasl", "--client", "--smtp",
            f"--connect=127.0.0.1:{srv.ports['submission']}", "--starttls",
            "--x509-ca-file=", "-m", mech, "-a", ALICE, "-p", password,
            "--quiet"]
    if not cb:
        args.append("--no-cb")
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT * 2)


def test_gsasl_scram_plus_with_channel_binding(srv):
    r = gsasl(srv, "SCRAM-SHA-256-PLUS", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    # The client asked for tls-exporter binding ("p=tls-exporter").
    assert "AUTH SCRAM-SHA-256-PLUS" in r.stdout


def test_gsasl_scram_without_binding(srv):
    r = gsasl(srv, "SCRAM-SHA-256", PASSWORD, cb=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout


def test_gsasl_wrong_password(srv):
    r = gsasl(srv, "SCRAM-SHA-256-PLUS", "not the password")
    assert r.returncode != 0
    assert "535 5.7.8" in r.stdout


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_msmtp_sends(srv, tmp_path, mode):
    port = srv.ports["submission" if mode == "starttls" else "submissions"]
    rc = tmp_path / "msmtprc"
    rc.write_text(
        "account default\n"
        f"host 127.0.0.1\nport {port}\n"
        "tls on\n"
        f"tls_starttls {'on' if mode == 'starttls' else 'off'}\n"
        "tls_certcheck off\n"
        "auth on\n"
        f"user {ALICE}\npassword {PASSWORD}\nfrom {ALICE}\n")
    rc.chmod(0o600)
    msg = (f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: msmtp {mode}\r\n\r\n"
           "sent by msmtp\r\n")
    r = subprocess.run(["msmtp", "-C", str(rc), BOB], input=msg,
                       capture_output=True, text=True, timeout=TIMEOUT * 2)
    assert r.returncode == 0, r.stdout + r.stderr
    files = srv.maildir_files(BOB)
    assert len(files) == 1
    data = files[0].read_bytes()
    assert b"sent by msmtp" in data
    assert b"with ESMTPSA id" in data


def s_client(args, send=b"QUIT\r\n"):
    return subprocess.run(["openssl", "s_client", "-brief", "-ign_eof"]
                          + args, input=send, capture_output=True,
                          timeout=TIMEOUT * 2)


@pytest.mark.parametrize("kind", ["smtp", "submission", "pop3", "submissions",
                                  "pop3s"])
def test_openssl_s_client_negotiates_tls13(srv, kind):
    port = srv.port if kind == "smtp" else srv.ports[kind]
    args = ["-connect", f"127.0.0.1:{port}"]
    if kind in ("smtp", "submission"):
        args += ["-starttls", "smtp"]
    elif kind == "pop3":
        args += ["-starttls", "pop3"]
    r = s_client(args)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "Protocol version: TLSv1.3" in out, out
    if kind.startswith("pop3"):
        assert "+OK" in out
    else:
        assert "221 2.0.0" in out


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_protocols_refused(srv, flag):
    r = s_client(["-connect", f"127.0.0.1:{srv.ports['submissions']}", flag,
                  "-cipher", "DEFAULT@SECLEVEL=0"])
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "Protocol version:" not in out, out
    assert r.returncode != 0, out

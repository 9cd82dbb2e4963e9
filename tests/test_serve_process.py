"""`policyd serve` as a real process: reload, reload under load, SIGTERM drain, workers,
TLS and mutual TLS (certificates made at test time)."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import threading
import time

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from policyd.client import ClientTLS, DecisionClient, PolicydUnavailable

from .conftest import EXAMPLES, order, req, user
from .servers import ServeProcess, free_port, thread_server, wait_serving

ALICE_READ = req(user(), "read", order())


def _policy_dir(tmp_path):
    d = tmp_path / "set"
    shutil.copytree(EXAMPLES / "orders", d)
    return d


def _wait_for(predicate, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def _touch_policy(path, text):
    path.write_text(text)
    stamp = time.time() + 1  # mtime moves even on coarse clocks
    os.utime(path, (stamp, stamp))


def test_reload_edit_broken_edit_and_fix(tmp_path, caplog):
    d = _policy_dir(tmp_path)
    policy = d / "orders.policy"
    original = policy.read_text()
    with thread_server(d, reload_interval=0.05) as (target, built):
        client = DecisionClient(target, timeout=5)
        first = client.check(ALICE_READ)
        assert first.allowed

        _touch_policy(policy, original.replace("allow read, list when principal is viewer",
                                               "allow list when principal is viewer"))
        _wait_for(lambda: client.check(ALICE_READ).policy_version != first.policy_version,
                  what="reload")
        edited = client.check(ALICE_READ)
        assert edited.reasons == ["orders.owner_access"]  # the viewer rule no longer reads

        _touch_policy(policy, original.replace("principal.tenant", "principal.tennant"))
        _wait_for(lambda: "reload failed" in caplog.text, what="failed reload logged")
        assert client.check(ALICE_READ).policy_version == edited.policy_version
        assert "E311" in caplog.text

        _touch_policy(policy, original)
        _wait_for(lambda: client.check(ALICE_READ).policy_version == first.policy_version,
                  what="fixed reload")
        client.close()


def test_reload_under_load_fails_no_call(tmp_path):
    d = _policy_dir(tmp_path)
    policy = d / "orders.policy"
    original = policy.read_text()
    errors, calls, versions = [], [0], set()
    stop = threading.Event()
    with thread_server(d, reload_interval=0.02) as (target, _):
        def hammer():
            with DecisionClient(target, timeout=5) as client:
                while not stop.is_set():
                    try:
                        versions.add(client.check(ALICE_READ).policy_version)
                        calls[0] += 1
                    except Exception as exc:  # any failure at all is the bug
                        errors.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(6):
            _touch_policy(policy, original + f"\n# edit {i}\n")
            time.sleep(0.15)
        stop.set()
        for t in threads:
            t.join()
    assert not errors and calls[0] > 100
    assert len(versions) >= 3  # reloads really happened while calls were made


def test_sigterm_drains_in_flight_calls_and_exits_0(tmp_path):
    server = ServeProcess(EXAMPLES / "orders", "--grace", "20", "--max-batch-decisions", "100000",
                          "--max-message-bytes",
                          str(64 << 20), tmp=tmp_path).wait_serving()
    # a small request (quick to send) that takes the server a good while to decide
    big = [{"resource": order("o1"), "actions": ["read", "update", "delete", "refund"] * 25000}]
    result: dict = {}

    def call():
        with DecisionClient(server.target, timeout=30,
                            max_message_bytes=64 * 1024 * 1024) as client:
            try:
                result["decisions"] = client.check_batch(user(), big, {"ip": "10.1.2.3"})
            except Exception as exc:
                result["error"] = exc
            result["done"] = time.monotonic()

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.4)  # the batch is being decided
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    t.join()
    code = server.terminate()
    log = server.log()
    assert "error" not in result, (result, log)
    assert len(result["decisions"]) == 100000 and result["done"] > sent  # it was in flight
    assert code == 0 and "stopped" in log and "Traceback" not in log


def test_workers_share_the_port(tmp_path):
    server = ServeProcess(EXAMPLES / "orders", "--workers", "2", tmp=tmp_path).wait_serving()
    try:
        prefixes = set()
        end = time.monotonic() + 20
        while len(prefixes) < 2 and time.monotonic() < end:
            with DecisionClient(server.target, timeout=5) as client:  # a new connection each
                _, decision_id = client.check_with_id(ALICE_READ)
                prefixes.add(decision_id.split("-")[0])
        assert len(prefixes) == 2, server.log()
    finally:
        code = server.terminate()
    assert code == 0, server.log()
    assert server.log().count("stopped") == 2


def test_bad_flags_and_broken_policies_fail_fast(tmp_path):
    bad = tmp_path / "bad.policy"
    bad.write_text("policy p for Nothing {}\n")
    broken = ServeProcess(bad, tmp=tmp_path)
    assert broken.wait() == 1 and "error[E115]" in broken.log()
    proc = ServeProcess(EXAMPLES / "orders", "--tls-cert", str(bad), tmp=tmp_path)
    assert proc.wait() == 2 and "--tls-cert and --tls-key go together" in proc.log()


# ---- TLS ----------------------------------------------------------------------------


def _cert(name, issuer_key=None, issuer_name=None, ca=False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_name or subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(tmp_path, name, key, cert):
    (tmp_path / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return tmp_path / f"{name}.pem", tmp_path / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _cert("policyd test CA", ca=True)
    ca_pem, _ = _write(tmp, "ca", ca_key, ca_cert)
    server = _write(tmp, "server", *_cert("localhost", ca_key, ca_cert.subject))
    client = _write(tmp, "client", *_cert("a-service", ca_key, ca_cert.subject))
    return ca_pem, server, client


def _tls_target(port):
    return f"localhost:{port}"


def test_tls(pki, tmp_path):
    ca, (cert, key), _ = pki
    port = free_port()
    server = ServeProcess(EXAMPLES / "orders", "--tls-cert", str(cert), "--tls-key", str(key),
                          port=port, tmp=tmp_path)
    try:
        creds = grpc.ssl_channel_credentials(ca.read_bytes())
        wait_serving(_tls_target(port), credentials=creds)
        with DecisionClient(_tls_target(port), timeout=5, tls=ClientTLS(ca_file=ca)) as client:
            assert client.check(ALICE_READ).allowed
        with DecisionClient(f"127.0.0.1:{port}", timeout=2) as plaintext, \
                pytest.raises(PolicydUnavailable):
            plaintext.check(ALICE_READ)
    finally:
        assert server.terminate() == 0


def test_mutual_tls_refuses_a_client_without_a_certificate(pki, tmp_path):
    ca, (cert, key), (client_cert, client_key) = pki
    port = free_port()
    server = ServeProcess(EXAMPLES / "orders", "--tls-cert", str(cert), "--tls-key", str(key),
                          "--tls-client-ca", str(ca), port=port, tmp=tmp_path)
    try:
        creds = grpc.ssl_channel_credentials(ca.read_bytes(), client_key.read_bytes(),
                                             client_cert.read_bytes())
        wait_serving(_tls_target(port), credentials=creds)
        mtls = ClientTLS(ca_file=ca, cert_file=client_cert, key_file=client_key)
        with DecisionClient(_tls_target(port), timeout=5, tls=mtls) as client:
            assert client.check(ALICE_READ).allowed
        with DecisionClient(_tls_target(port), timeout=2, tls=ClientTLS(ca_file=ca)) as anon, \
                pytest.raises(PolicydUnavailable):
            anon.check(ALICE_READ)
    finally:
        assert server.terminate() == 0


def test_the_authzen_api_over_https_with_client_certificates(pki, tmp_path):
    """The PEP authenticates by certificate: TLS settings are shared with gRPC."""
    import ssl

    import httpx

    ca, (cert, key), (client_cert, client_key) = pki
    port, http_port = free_port(), free_port()
    server = ServeProcess(EXAMPLES / "todo", "--tls-cert", str(cert), "--tls-key", str(key),
                          "--tls-client-ca", str(ca), "--http-port", str(http_port),
                          port=port, tmp=tmp_path)
    body = {"subject": {"type": "user",
                        "id": "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},
            "action": {"name": "can_read_user"}, "resource": {"type": "user", "id": "x"}}
    url = f"https://localhost:{http_port}/access/v1/evaluation"
    try:
        creds = grpc.ssl_channel_credentials(ca.read_bytes(), client_key.read_bytes(),
                                             client_cert.read_bytes())
        wait_serving(_tls_target(port), credentials=creds)
        trusted = ssl.create_default_context(cafile=str(ca))
        trusted.load_cert_chain(str(client_cert), str(client_key))
        end = time.monotonic() + 10
        while True:
            try:
                resp = httpx.post(url, json=body, verify=trusted, timeout=5)
                break
            except httpx.ConnectError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        assert resp.status_code == 200 and resp.json() == {"decision": True}
        anonymous = ssl.create_default_context(cafile=str(ca))
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.post(url, json=body, verify=anonymous, timeout=5)
    finally:
        assert server.terminate() == 0

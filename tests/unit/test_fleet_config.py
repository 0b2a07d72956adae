"""The local fleet's configuration text (writing/devtools/fleet_config.py): nginx in front of the replicas,
Prometheus scraping each. Fast: nothing is started; ``nginx -t`` and ``promtool check config`` check the
generated files where those programs are installed (scripts/install-fleet.sh)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from writing.devtools import cluster
from writing.devtools.fleet import child_pids
from writing.devtools.fleet_config import NginxPaths, count_retries, nginx_conf, prometheus_yml

PORTS = [18001, 18002, 18003]


def _conf(tmp_path: Path, drained=(), run_as_root: bool = False) -> str:
    return nginx_conf(PORTS, drained, 18080, NginxPaths(tmp_path), run_as_root)


def _servers(text: str) -> list[str]:
    return re.findall(r"^\s*server 127\.0\.0\.1:.*;$", text, flags=re.M)


def test_every_replica_is_an_upstream_server_and_a_drained_one_is_down(tmp_path):
    servers = _servers(_conf(tmp_path, drained={1}))
    assert servers == [
        "        server 127.0.0.1:18001 max_fails=1 fail_timeout=3s;",
        "        server 127.0.0.1:18002 max_fails=1 fail_timeout=3s down;",
        "        server 127.0.0.1:18003 max_fails=1 fail_timeout=3s;",
    ]
    assert not any("down" in s for s in _servers(_conf(tmp_path)))


def test_retries_never_resend_a_request_a_replica_may_be_answering(tmp_path):
    text = _conf(tmp_path)
    assert "non_idempotent" not in text
    assert "proxy_next_upstream error timeout;" in text  # never on the service's own 502/503
    assert "proxy_next_upstream_tries 3;" in text
    assert "proxy_request_buffering on;" in text  # a retry has the body to send again


def test_the_edge_overwrites_forwarded_for_with_the_peer_address(tmp_path):
    text = _conf(tmp_path)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "$proxy_add_x_forwarded_for" not in text  # that would append to what the client sent
    assert "listen 127.0.0.1:18080;" in text
    assert "proxy_buffering off;" in text  # streamed answers pass through


def test_all_state_lives_under_the_prefix_and_root_keeps_root_workers(tmp_path):
    text = _conf(tmp_path)
    paths = re.findall(r"^\s*(?:\w+_temp_path|pid|error_log|access_log) (\S+)", text, flags=re.M)
    assert len(paths) == 8 and all(p.startswith(str(tmp_path)) for p in paths), paths
    assert "user " not in text
    assert "\nuser root;\n" in _conf(tmp_path, run_as_root=True)


def test_retries_are_counted_from_the_access_log():
    lines = [
        '127.0.0.1 [x] "POST /v1/generate HTTP/1.1" 200 10 upstream="127.0.0.1:18001" upstream_status="200" ...',
        '127.0.0.1 [x] "POST /v1/generate HTTP/1.1" 200 10 upstream="127.0.0.1:18002, 127.0.0.1:18003" ...',
        '127.0.0.1 [x] "GET /a,b HTTP/1.1" 200 10 upstream="127.0.0.1:18001" upstream_status="200" ...',
        "garbage",
    ]
    assert count_retries(lines) == 1


def test_prometheus_scrapes_each_replica_with_its_key_and_its_label(tmp_path):
    text = prometheus_yml(PORTS, tmp_path / "key")
    assert "job_name: writing" in text and "metrics_path: /metrics" in text
    assert f"credentials_file: {tmp_path / 'key'}" in text and "type: Bearer" in text
    for i, port in enumerate(PORTS):
        assert f"targets: ['127.0.0.1:{port}']\n        labels: {{replica: '{i}'}}" in text
    assert "scrape_interval: 2s" in text


@pytest.mark.skipif(not (shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)), reason="no nginx")
def test_nginx_accepts_the_generated_configuration(tmp_path):
    paths = NginxPaths(tmp_path)
    paths.make_dirs()
    paths.conf.write_text(_conf(tmp_path, drained={0}, run_as_root=os.geteuid() == 0))
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    cmd = [exe, "-t", "-p", str(tmp_path), "-e", str(paths.error_log), "-c", str(paths.conf)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")
def test_promtool_accepts_the_generated_configuration(tmp_path):
    key = tmp_path / "key"
    key.write_text("admin")
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_yml(PORTS, key))
    out = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")
def test_promtool_accepts_the_configuration_with_the_deployments_rules(tmp_path):
    """The fleet's Prometheus loads deploy/prometheus/rules.yml (writing/devtools/fleet.py), as the
    deployments' do: promtool checks the configuration and, through it, the rules."""
    rules = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"
    key = tmp_path / "key"
    key.write_text("admin")
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_yml(PORTS, key, rules_file=rules))
    assert f"rule_files:\n  - {rules}\n" in config.read_text()
    assert "rule_files" not in prometheus_yml(PORTS, key)
    out = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 rule files found" in out.stdout, out.stdout


def test_the_cli_keeps_what_the_environment_sets_and_generates_the_rest():
    given = {"API_KEYS": "k1", "EMBEDDING_MODEL": "/m", "SIMILARITY_THRESHOLD": "0.7"}
    env = cluster.replica_env(given)
    assert env["API_KEYS"] == "k1" and "EMBEDDING_MODEL" not in env and "SIMILARITY_THRESHOLD" not in env
    assert len(env["ADMIN_API_KEYS"]) >= 24 and env["FEEDBACK_SECRET"] != env["ADMIN_API_KEYS"]
    assert len(env["METRICS_API_KEYS"]) >= 24 and env["METRICS_API_KEYS"] != env["ADMIN_API_KEYS"]


def test_the_cli_writes_keys_readable_by_their_owner_only(tmp_path):
    path = tmp_path / "keys.env"
    path.write_text("old")
    cluster.write_private(path, "API_KEYS=k\n")
    assert path.read_text() == "API_KEYS=k\n" and path.stat().st_mode & 0o777 == 0o600


def test_child_pids_finds_a_process_children():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert proc.pid in child_pids(os.getpid())
    finally:
        proc.kill()
        proc.wait()


SIGNALS_CHILD = (  # a child that stops on its signals as `up` does, whatever the test runner ignores
    "import signal, sys, time\n"
    "from writing.devtools import cluster\n"
    "for sig in cluster.STOP_SIGNALS:\n    signal.signal(sig, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "{setup}"
    "cluster.stop_on_signals()\n"
    "try:\n    print('ready', flush=True)\n    time.sleep(30)\n"
    "except KeyboardInterrupt:\n    print('cleaned up', flush=True)\n"
)


def _signals_child(setup: str = "") -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNALS_CHILD.format(setup=setup)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "ready\n"
    return proc


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM", "SIGINT"])
def test_the_cli_stops_its_fleet_when_the_terminal_closes_or_down_asks(sig):
    """`up` runs its clean-up (the fleet's processes stopped, its pid file removed) on SIGHUP as on SIGTERM
    and Ctrl-C: Python's default for SIGHUP would end it at once and leave the replicas, nginx and Milvus
    running."""
    proc = _signals_child()
    try:
        proc.send_signal(getattr(signal, sig))
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert out == "cleaned up\n" and proc.returncode == 0


def test_the_cli_keeps_ignoring_a_hangup_it_was_started_to_ignore():
    """Under nohup (SIGHUP ignored from the start) the fleet outlives its terminal; `down` still stops it."""
    proc = _signals_child(setup="signal.signal(signal.SIGHUP, signal.SIG_IGN)\n")
    try:
        proc.send_signal(signal.SIGHUP)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert out == "cleaned up\n" and proc.returncode == 0

"""The files in deploy/ as shipped: the nginx site passes `nginx -t` with a certificate from
make-cert.sh, prod.yml and .env.example fit each other and the hub, the systemd units
verify."""

from __future__ import annotations

import re
import shutil
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.config import load_config
from tests.deploy.kit import DEPLOY, ROOT, moved, require_nginx

SITE = DEPLOY / "nginx" / "mt4hub.conf"


def _make_cert(folder: Path, name: str = "localhost") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "make-cert.sh"), str(folder), name],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_nginx_accepts_the_shipped_site(tmp_path: Path) -> None:
    """The old snippet failed here: "no ssl_certificate is defined"."""
    nginx = require_nginx()
    _make_cert(tmp_path / "tls")  # where the site's relative paths point: beside nginx.conf
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {SITE};\n}}\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_every_proxied_location_passes_the_host_with_its_port() -> None:
    """A location with any proxy_set_header of its own inherits none from the server, so
    each one must set Host to $http_host itself (else the Origin check refuses browsers)."""
    locations = re.findall(r"location [^{]+\{(.*?)\n    \}", SITE.read_text(), re.DOTALL)
    assert len(locations) == 3
    for body in locations:
        assert "proxy_pass http://mt4hub;" in body
        assert re.search(r"proxy_set_header Host +\$http_host;", body), body
        assert "X-Forwarded-Proto" in body
    assert "$host;" not in SITE.read_text()


def test_make_cert_makes_a_private_key_and_a_certificate_for_the_name(tmp_path: Path) -> None:
    _make_cert(tmp_path, "hub.example.com")
    key, crt = tmp_path / "mt4hub.key", tmp_path / "mt4hub.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    info = ssl._ssl._test_decode_cert(str(crt))  # type: ignore[attr-defined]
    assert ("commonName", "hub.example.com") in [pair for rdn in info["subject"] for pair in rdn]
    assert set(info["subjectAltName"]) == {
        ("DNS", "hub.example.com"),
        ("DNS", "localhost"),
        ("IP Address", "127.0.0.1"),
    }
    before = crt.read_bytes()
    again = _make_cert(tmp_path, "hub.example.com")
    assert crt.read_bytes() == before and "kept" in again.stderr


def test_prod_yml_is_valid_and_its_bridges_are_http() -> None:
    cfg = load_config(DEPLOY / "prod.yml")
    assert {a.bridge for a in cfg.agents.values()} == {
        "http://127.0.0.1:8081",
        "http://127.0.0.1:8082",
        "http://127.0.0.1:8083",
    }
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "check", "--config", str(DEPLOY / "prod.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode, out.stdout) == (0, "ok\n")


def test_make_env_fills_every_secret_prod_yml_names(tmp_path: Path) -> None:
    env_file = tmp_path / "settings.env"
    subprocess.run([str(DEPLOY / "make-env.sh"), str(env_file)], check=True, timeout=60)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1)
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    secrets = [values[k] for k in ("HUB_ADMIN_TOKEN", "HUB_ML_TOKEN", "HUB_READ_TOKEN")]
    assert all(len(s) == 32 for s in secrets) and len(set(secrets)) == 3
    assert "replace-me" not in "".join(values.values())
    database = r"postgresql://mt4hub:([^@]+)@127\.0\.0\.1:5432/mt4hub"
    password = re.fullmatch(database, values["DATABASE_URL"])
    assert password is not None and len(password[1]) == 32
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    named = yaml.safe_load((DEPLOY / "prod.yml").read_text())["auth"]["tokens"]
    assert {t["secret_env"] for t in named} <= set(values)


@pytest.mark.parametrize("unit", ["mt4hub@8090.service", "mt4hub-sim@8081.service"])
def test_the_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on this machine")
    template = re.sub(r"@\d+", "@", unit)
    (tmp_path / unit).write_text(moved((DEPLOY / "systemd" / template).read_text(), tmp_path))
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    problems = [line for line in checked.stderr.splitlines() if unit in line]
    assert problems == []
    assert (ROOT / ".venv" / "bin" / "mt4hub").exists()

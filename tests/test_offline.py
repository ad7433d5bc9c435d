"""Nothing downloads at run time: the CLI works in a process where only loopback can be reached.

The commands run in a fresh interpreter whose ``sitecustomize`` installs ``tests.netguard`` and logs every
refused connection; caches point at empty folders, so a model, tiktoken encoding or telemetry call that
needed the network would show up in the log (or fail the command).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANONYMIZED_TELEMETRY")

ARTICLE = """# Roaming abroad

Roaming in Europe costs a flat daily charge of five pounds for calls, texts and data.

## Turning roaming off

Open Settings, then Mobile data, and switch off data roaming before you travel.
"""


@pytest.fixture
def guarded_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("from tests import netguard\n\nnetguard.install()\n", encoding="utf-8")
    for name in ("hf-home", "xdg-cache", "data"):
        (tmp_path / name).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_") and k not in _OFFLINE_FLAGS}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "COPILOT_NETGUARD_LOG": str(tmp_path / "refused.log"),
        "COPILOT_DATA_DIR": str(tmp_path / "data"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "xdg-cache" / "tiktoken"),
    })
    return env


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def _refused(env: dict[str, str]) -> list[str]:
    log = Path(env["COPILOT_NETGUARD_LOG"])
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_guard_in_subprocess_refuses_and_logs_outside_connections(guarded_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    probe = ("import socket\n"
             "try:\n"
             "    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
             "except Exception as exc:\n"
             "    print(type(exc).__name__)\n")

    result = _run(guarded_env, tmp_path, "-c", probe)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "NetworkBlocked"
    assert any("192.0.2.1" in line for line in _refused(guarded_env))


def test_cli_ingest_and_search_run_without_network(guarded_env: dict[str, str], tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "roaming.md").write_text(ARTICLE, encoding="utf-8")
    (content / "faq.csv").write_text("question,answer\nCan I keep my number?,Yes: ask for a PAC code.\n",
                                     encoding="utf-8")

    created = _run(guarded_env, tmp_path, "-m", "api.cli", "tenants", "create", "acme")
    ingested = _run(guarded_env, tmp_path, "-m", "api.cli", "knowledge", "ingest", str(content),
                    "--tenant", "acme", "--json")
    searched = _run(guarded_env, tmp_path, "-m", "api.cli", "knowledge", "search",
                    "how do I stop data charges when travelling", "--tenant", "acme", "--json")

    for result in (created, ingested, searched):
        assert result.returncode == 0, result.stderr
    report = json.loads(ingested.stdout)
    assert (report["added"], report["failed"]) == (2, [])
    results = json.loads(searched.stdout)["results"]
    assert results[0]["document_id"] == "roaming.md"
    assert _refused(guarded_env) == []
    assert (tmp_path / "data" / "copilot.db").is_file()

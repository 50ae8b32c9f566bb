"""What a run writes - results, logs, generated configs, wrk's output - is for its owner only."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SERVERBENCH


@pytest.mark.integration
def test_a_run_writes_nothing_group_or_other_can_read(tmp_path: Path):
    out = tmp_path / "results"
    done = subprocess.run(
        [
            *SERVERBENCH, "run", "--profile", "smoke", "--duration", "1", "--warmup", "0",
            "--repeats", "1", "--stack", "bjoern", "--time-wait-threshold", "10000000",
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = [out, *out.rglob("*")]
    names = {path.name for path in written}
    assert {"results.json", "logs", "nginx.conf", "bjoern.log", "measure.wrk.json"} <= names
    assert {"measure.wrk.log", "error.log"} <= names
    shared = [
        f"{stat.filemode(path.lstat().st_mode)} {path}"
        for path in written
        if path.lstat().st_mode & 0o077
    ]
    assert shared == []

"""Server logs stay bounded: cut in place with a marker, sizes counted, heavy writers named."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from serverbench.results.model import LogSize
from serverbench.run.log_cap import LogCap, cut, heavy_writers


def test_a_log_over_the_limit_keeps_its_head_and_tail_with_a_marker(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"H" * 100 + b"M" * 1000 + b"T" * 100)
    removed, marker = cut(log, head_bytes=100, tail_bytes=100, limit_bytes=500)
    text = log.read_bytes()
    assert removed == 1000
    assert text.startswith(b"H" * 100 + b"\n[serverbench: 1,000 bytes cut here")
    assert text.endswith(b"]\n" + b"T" * 100)
    assert len(text) == 200 + marker
    assert cut(log, head_bytes=100, tail_bytes=100, limit_bytes=500) == (0, 0)


def test_a_writer_appending_during_the_cuts_keeps_appending_and_sizes_add_up(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    # an app printing on every request, through an O_APPEND log as serverbench opens them
    writer = (
        "import sys, os\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        "line = b'x' * 99 + b'\\n'\n"
        "for _ in range(200_000): os.write(fd, line)\n"
        "os.write(fd, b'the last line\\n')\n"
    )
    with LogCap(
        {"app": log}, limit_bytes=256 * 1024, head_bytes=16 * 1024, tail_bytes=16 * 1024,
        interval_s=0.01,
    ) as cap:  # fmt: skip
        subprocess.run([sys.executable, "-c", writer, str(log)], check=True)
    sizes = cap.sizes()["app"]
    # bytes appended in the instant of a cut are lost uncounted: a lower bound, close to it
    assert 0.9 * 20_000_014 <= sizes.written_bytes <= 20_000_014
    assert sizes.cut_bytes > 0
    assert log.stat().st_size <= 256 * 1024 + 16 * 1024  # one interval of appends, at most
    assert log.read_bytes().endswith(b"the last line\n")
    assert b"bytes cut here" in log.read_bytes()


def test_logs_under_the_limit_are_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "quiet.log"
    log.write_text("started\n")
    with LogCap({"quiet": log}, interval_s=0.01) as cap:
        time.sleep(0.05)
    assert log.read_text() == "started\n"
    assert cap.sizes()["quiet"] == LogSize(written_bytes=8, cut_bytes=0)
    assert cap.written() == 8


def test_a_missing_log_counts_as_empty(tmp_path: Path) -> None:
    cap = LogCap({"none": tmp_path / "nope.log"})
    assert cap.stop()["none"].written_bytes == 0
    assert not (tmp_path / "nope.log").exists()
    assert os.listdir(tmp_path) == []


def test_heavy_writers_are_named_with_their_rate() -> None:
    before = {"gunicorn": LogSize(written_bytes=1000, cut_bytes=0)}
    after = {
        "gunicorn": LogSize(written_bytes=54_001_000, cut_bytes=20_000_000),
        "nginx": LogSize(written_bytes=10, cut_bytes=0),
    }
    lines = heavy_writers(before, after, window_s=2.0)
    assert len(lines) == 1
    assert lines[0].startswith("gunicorn wrote 54.0 MB to its log during the 2 s measurement")
    assert "27.0 MB/s" in lines[0]

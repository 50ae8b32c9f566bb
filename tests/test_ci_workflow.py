"""The README's CI workflow, run: its `serverbench` steps, on a project whose change slows it down.

The workflow's baseline comes from main's artifact; here the "main" job's results folder plays
that artifact. The project's app sleeps DELAY_MS per request (set through the configuration's
`env`), so the "pull request" that raises it is a real, seeded slowdown: the compare step must
write the Markdown summary to the job summary and fail, and pass when nothing changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

APP = """\
import os
import time

DELAY_S = float(os.environ.get("DELAY_MS", "0")) / 1000


def app(environ, start_response):
    if DELAY_S:
        time.sleep(DELAY_S)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def config(delay_ms: int) -> str:
    return f"""\
app = "shop:app"
path = "/"
expect_regex = "^ok$"
stacks = ["gunicorn"]
profile = ["smoke"]
repeats = 2
env = {{ DELAY_MS = "{delay_ms}" }}
"""


def workflow_steps() -> list[str]:
    """The shell of every `run:` step of the README's workflow that calls serverbench."""
    block = re.search(
        r"```yaml\n# \.github/workflows/performance\.yml\n(.*?)```", README.read_text(), re.S
    )
    assert block is not None, "the README's CI workflow is gone"
    steps: list[str] = []
    lines = block.group(1).splitlines()
    for index, line in enumerate(lines):
        found = re.match(r"^(\s*)(?:- )?run: (.*)$", line)
        if not found:
            continue
        if found.group(2) == "|":
            indent = len(found.group(1)) + 2
            body = []
            for follow in lines[index + 1 :]:
                if follow.strip() and len(follow) - len(follow.lstrip()) <= indent - 2:
                    break
                body.append(follow[indent:])
            script = "\n".join(body).strip()
        else:
            script = found.group(2)
        if re.search(r"^\s*serverbench |\n\s*serverbench ", script) or script.startswith(
            "serverbench "
        ):
            steps.append(script)
    return steps


def step(script: str, project: Path, summary: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GITHUB_STEP_SUMMARY"] = str(summary)
    # GitHub runs each step with bash -e
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_workflow_writes_the_summary_and_fails_on_a_seeded_slowdown(tmp_path: Path) -> None:
    run_step, compare_step = workflow_steps()
    assert run_step.startswith("serverbench run")
    assert "--format md" in compare_step
    assert "--fail-if-slower" in compare_step
    project = tmp_path / "shop"
    project.mkdir()
    (project / "shop.py").write_text(APP)
    (project / "serverbench.toml").write_text(config(delay_ms=0))
    summary = tmp_path / "summary.md"

    # main: measure, and keep the results as the artifact the pull request downloads
    main = step(run_step, project, summary)
    assert main.returncode == 0, main.stderr
    shutil.move(project / "current", project / "baseline")

    # a pull request that changes nothing passes, and says so in the job summary
    shutil.copytree(project / "baseline", project / "current")
    same = step(compare_step, project, summary)
    assert same.returncode == 0, same.stderr
    assert "✅ No entry lost more than 10 %" in summary.read_text()
    shutil.rmtree(project / "current")
    summary.unlink()

    # a pull request that makes every request 20 ms slower fails the job
    (project / "serverbench.toml").write_text(config(delay_ms=20))
    pr = step(run_step, project, summary)
    assert pr.returncode == 0, pr.stderr
    slow = step(compare_step, project, summary)
    assert slow.returncode == 1, slow.stdout + slow.stderr
    text = summary.read_text()
    assert text.startswith("## serverbench: performance comparison")
    assert re.search(r"❌ \d slower than the 10 % limit: .*`gunicorn/shop:app/smoke`", text)
    assert "slower: gunicorn/shop:app/smoke: req/s -" in slow.stderr

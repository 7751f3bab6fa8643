"""Seed-table workers end with their parent: a ``quality-table`` / ``mode-table`` killed from outside leaves no
training running on as an orphan (found when a killed table's worker kept one core busy for 10 minutes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

JOB = '''
import os, time
from pathlib import Path

def long_job(pid_dir):
    Path(pid_dir, f"{os.getpid()}.pid").write_text("")
    time.sleep(600)
    return {}
'''

PARENT = """
import sys
from orphan_job import long_job
from gandeploy.evaluation.studies.seed_runs import run_jobs
run_jobs(long_job, [(sys.argv[1],), (sys.argv[1],)], 2, lambda result, args: None)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose (its parent died)
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_end_when_the_table_process_is_killed(tmp_path: Path) -> None:
    (tmp_path / "orphan_job.py").write_text(JOB)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pids)], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.iterdir())) < 2:  # both workers started their job
            assert parent.poll() is None and time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
        workers = [int(p.stem) for p in pids.iterdir()]
        assert all(_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"workers {left} outlived their killed parent"

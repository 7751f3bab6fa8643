"""What commands do with the files they write (issue 22, items 5, 10, 11): one-line errors for paths that cannot
be written, a full disk or too large a request; nothing half-written; the suffix picks the format; missing
folders are created only inside the workspace (the current directory)."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.utils import io as gio_files

JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


def _invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) <= 3 and lines[-1].startswith("Error"), result.output  # usage errors add a usage line
    return lines[-1]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run dir, export dir) of a tiny DCGAN, made once for the module."""
    from export_helpers import make_run_dir

    root = tmp_path_factory.mktemp("outputs")
    run = make_run_dir(root / "runs" / "dcgan-tiny", "dcgan")
    result = _invoke("export", run, "--out", root / "export" / "dcgan-tiny", "--max-batch", "4")
    assert result.exit_code == 0, result.output
    return run, root / "export" / "dcgan-tiny"


@pytest.fixture
def export(made: tuple[Path, Path]) -> Path:
    return made[1]


def _sample(export: Path, out: Path | str, *more: str):
    return _invoke("sample", "dcgan-tiny", "--export", export, "--n", "3", "--out", out, *more)


def test_sample_writes_the_format_its_suffix_names(export: Path, tmp_path: Path) -> None:
    """Item 11: '--out x.jpg' wrote PNG bytes into a .jpg."""
    for name, magic in (("grid.jpg", JPEG_MAGIC), ("grid.JPEG", JPEG_MAGIC), ("grid.png", PNG_MAGIC)):
        assert _sample(export, tmp_path / name).exit_code == 0
        assert (tmp_path / name).read_bytes().startswith(magic), name
    assert np.load(tmp_path / "a.npy").shape == (3, 32, 32, 1) if _sample(export, tmp_path / "a.npy").exit_code == 0 \
        else pytest.fail("--out a.npy failed")
    text = _one_line_error(_sample(export, tmp_path / "grid.gif"), code=2)
    assert "--out" in text and ".gif" in text and ".jpg" in text
    assert not (tmp_path / "grid.gif").exists()


def test_missing_folder_outside_the_workspace_is_refused(export: Path, tmp_path: Path, monkeypatch) -> None:
    """Item 11: '--out /nonexistent/dir/x.png' silently created the folders; inside the workspace it still may."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    far = tmp_path / "nonexistent" / "dir" / "x.png"
    text = _one_line_error(_sample(export, far), code=2)
    assert "--out" in text and "does not exist" in text and str(far.parent) in text
    assert not (tmp_path / "nonexistent").exists()
    assert _sample(export, Path("new") / "dir" / "x.png").exit_code == 0  # relative, inside the workspace
    assert (workspace / "new" / "dir" / "x.png").read_bytes().startswith(PNG_MAGIC)


def test_sample_refuses_too_many_up_front(export: Path, tmp_path: Path) -> None:
    """Item 5: 'sample --n 1000000000' ended in a MemoryError; it is refused before any array exists."""
    start = time.perf_counter()
    text = _one_line_error(_invoke("sample", "dcgan-tiny", "--export", export, "--n", "1000000000",
                                   "--out", tmp_path / "big.png"))
    assert time.perf_counter() - start < 30
    assert "--n 1000000000" in text and "1 GiB" in text and "--seed" in text
    assert not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("failure", [
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left"),
], ids=["permission", "disk-full"])
def test_write_failures_are_one_line_and_leave_the_old_file(export: Path, tmp_path: Path, monkeypatch,
                                                            failure) -> None:
    """Item 5: PermissionError / ENOSPC reached the user as tracebacks. Injected where the disk reports them
    (the flush of the staged file), they end the command in one line naming the file, the previous file stays
    whole and no staging file is left behind."""
    exc, needle = failure
    out = tmp_path / "grid.png"
    assert _sample(export, out).exit_code == 0
    before = out.read_bytes()

    def fail(fd: int) -> None:
        exc.filename = str(out)
        raise exc

    monkeypatch.setattr(gio_files.os, "fsync", fail)
    text = _one_line_error(_sample(export, out, "--seed", "5"))
    assert needle in text and str(out) in text
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]  # no .tmp left


def test_repo_write_failure_is_one_line_and_keeps_the_repository(export: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    """Item 5 on another writer: 'repo' stages the models; a full disk mid-way leaves the old repository."""
    repo = tmp_path / "model_repository"
    assert _invoke("repo", export, "--out", repo).exit_code == 0
    before = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}

    def fail(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gio_files.os, "fsync", fail)
    text = _one_line_error(_invoke("repo", export, "--out", repo, "--instances", "2"))
    assert "no space left" in text
    assert {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_repo_out_a_file_is_a_clean_error(export: Path, tmp_path: Path) -> None:
    """Item 10: 'gandeploy repo EXPORT --out README.md' ended in a FileExistsError traceback."""
    readme = tmp_path / "README.md"
    readme.write_text("mine\n")
    text = _one_line_error(_invoke("repo", export, "--out", readme), code=2)
    assert "--out" in text and "is a file" in text
    assert readme.read_text() == "mine\n"
    from gandeploy.errors import UserInputError
    from gandeploy.serving.repository import build_repository

    with pytest.raises(UserInputError, match="is a file"):  # the Python API too
        build_repository([export], readme)


@pytest.mark.parametrize("args", [
    ["repo", "{export}", "--out", "{file}"],
    ["evaluate", "{export}", "--report", "{file}"],
    ["parity", "{export}", "--report", "{file}"],
    ["bench", "{export}", "--report", "{file}"],
    ["export", "{run}", "--out", "{file}"],
    ["train", "mlp", "ring8", "--out", "{file}"],
    ["translate", "cyclegan-tiny", "{file}", "--out", "{file}"],
], ids=lambda a: a[0])
def test_every_folder_output_refuses_a_file(args: list[str], made: tuple[Path, Path], tmp_path: Path) -> None:
    """The same rule on every command that writes a folder: an existing file given as the folder is refused
    before anything runs, naming the flag."""
    file = tmp_path / "taken.txt"
    file.write_text("mine\n")
    values = {"export": str(made[1]), "file": str(file), "run": str(made[0])}
    text = _one_line_error(_invoke(*[a.format(**values) for a in args]), code=2)
    assert "is a file" in text and ("--out" in text or "--report" in text)
    assert file.read_text() == "mine\n"


@pytest.mark.parametrize("command", [
    ["train", "mlp", "ring8", "--steps", "1", "--arch", "hidden=8", "--batch-size", "16", "--device", "cpu",
     "--out", "{tmp}/run"],
    ["export", "{run}", "--out", "{tmp}/export", "--max-batch", "2"],
    ["evaluate", "{export}", "--n", "64", "--kid-subsets", "2", "--kid-subset-size", "32", "--real", "digits",
     "--report", "{tmp}/report"],
], ids=lambda c: c[0])
def test_disk_full_is_one_line_on_other_writers(command: list[str], made: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch) -> None:
    """Item 5 on train, export and evaluate: the same one line from the CLI boundary, whatever writes."""
    def fail(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gio_files.os, "fsync", fail)
    values = {"tmp": str(tmp_path), "run": str(made[0]), "export": str(made[1])}
    text = _one_line_error(_invoke(*[a.format(**values) for a in command]))
    assert "no space left" in text, text
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_sample_refuses_a_tiny_truncation_in_process(export: Path, tmp_path: Path) -> None:
    """Issue 22 item 1 on the CLI and the local backend: t = 1e-9 (which looped forever) is one line naming
    the flag's input and the minimum; the minimum itself samples."""
    for flags in (["--truncation", "1e-9"], ["--truncation-sweep", "1e-9,1"]):
        text = _one_line_error(_sample(export, tmp_path / "t.png", *flags))
        assert "truncation" in text and "0.02" in text, text
    assert not (tmp_path / "t.png").exists()
    result = _sample(export, tmp_path / "t.png", "--truncation", "0.02")
    assert result.exit_code == 0, result.output


def test_evaluate_reports_of_run_export_and_served_model_never_share_a_folder(made: tuple[Path, Path]) -> None:
    """Item 11: 'evaluate export/NAME' and 'evaluate NAME --url' (the model served from that export) both wrote
    reports/evaluate/NAME/ (and so did the run dir of the same name)."""
    from gandeploy.cli.evaluate import default_report

    run, export = made
    paths = {default_report(str(run), None, False), default_report(str(export), None, False),
             default_report(str(export), "onnxruntime-fp16", False), default_report("dcgan-tiny", None, False),
             default_report(str(export), None, True)}
    assert {p.name for p in paths} == {"dcgan-tiny-run", "dcgan-tiny-export-onnxruntime",
                                       "dcgan-tiny-export-onnxruntime-fp16", "dcgan-tiny-served", "dcgan-tiny-compare"}


def test_an_unwritable_folder_is_refused_before_the_command_runs(export: Path, tmp_path: Path, monkeypatch) -> None:
    """Item 5, up front: a folder the user may not write into is named before any work (as root, os.access
    always says yes, so the answer is patched here; the write-time PermissionError is tested above)."""
    from gandeploy.cli import options

    real = options.os.access
    monkeypatch.setattr(options.os, "access", lambda path, mode: False if mode & os.W_OK else real(path, mode))
    text = _one_line_error(_sample(export, tmp_path / "x.png"), code=2)
    assert "--out" in text and "permission denied" in text and str(tmp_path) in text


def test_out_of_memory_is_one_line(export: Path, tmp_path: Path, monkeypatch) -> None:
    """Item 5: a MemoryError anywhere (here: while the grid is assembled) is one line, and nothing is written."""
    from gandeploy.serving import pictures

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(pictures, "image_grid", exhausted)
    text = _one_line_error(_sample(export, tmp_path / "grid.png"))
    assert "out of memory" in text and "--n" in text
    assert list(tmp_path.iterdir()) == []

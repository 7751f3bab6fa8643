"""What a newcomer hits with files (issue 12): bogus weights, cut messages, foreign exports, run dirs to repo."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import one_line


def _invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def _clean(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), repr(result.exception)
    return result.output


def test_bogus_latest_pt_is_one_line_error_naming_it(run_factory, tmp_path: Path) -> None:
    """Item 7: 'printf hello > RUN/checkpoints/latest.pt; gandeploy export RUN' gave torch's KeyError."""
    run = run_factory("dcgan")
    ckpt = run / "checkpoints" / "latest.pt"
    ckpt.write_bytes(b"hello")
    text = _clean(_invoke("export", run, "--out", tmp_path / "e"))
    assert str(ckpt) in text and "corrupt" in text
    assert len(text.strip().splitlines()) == 1, text


def test_bogus_import_file_is_one_line_error(tmp_path: Path) -> None:
    """Item 7: 'gandeploy import cyclegan-reference fake.pth' gave a KeyError traceback."""
    fake = tmp_path / "fake.pth"
    fake.write_bytes(b"hello")
    text = _clean(_invoke("import", "cyclegan-reference", fake, "--out", tmp_path / "run"))
    assert str(fake) in text and "corrupt" in text


class _Obj:  # a pickled class: refused by weights_only=True
    pass


def test_unsafe_advice_never_reaches_the_user(tmp_path: Path) -> None:
    """Item 8: torch's 're-run with weights_only=False' advice leaked into the error."""
    path = tmp_path / "objects.pth"
    buf = io.BytesIO()
    torch.save({"net": _Obj()}, buf, pickle_module=pickle)
    path.write_bytes(buf.getvalue())
    text = _clean(_invoke("import", "dcgan-example", path, "--out", tmp_path / "run"))
    assert str(path) in text and "weights only" in text
    assert "weights_only=False" not in text and "`weights_only` set to `False`" not in text


def test_one_line_cuts_at_a_word_boundary() -> None:
    """Item 8: messages were cut at 200 characters mid-word ('pass --url / --protoc')."""
    text = "cannot reach Triton at 127.0.0.1:8000 over http: start it with 'gandeploy serve' " * 4
    cut = one_line(text, 100)
    assert cut.endswith(" …") and len(cut) <= 102
    assert text.startswith(cut[:-2]) and text[len(cut) - 2] == " "  # the cut falls on a space
    assert one_line("\x1b[1mbold\x1b[0m\nsecond line") == "bold"


def test_parity_without_server_names_the_flags_in_full(run_factory, tmp_path: Path) -> None:
    """Item 8: 'parity EXPORT --url' with no server ended in '... pass --url / --protoc'."""
    run = run_factory("dcgan")
    out = tmp_path / "export" / "dcgan-tiny"
    assert _invoke("export", run, "--out", out, "--max-batch", "2").exit_code == 0
    report = tmp_path / "rep" / "parity.json"  # the last passing report: a dead --url must not replace it
    report.parent.mkdir()
    report.write_text('{"passed": true}\n')
    text = _clean(_invoke("parity", out, "--backends", "triton,triton-ensemble", "--url", "127.0.0.1:9",
                          "--report", tmp_path / "rep"))
    assert "pass --url / --protocol" in text, text
    error = text[text.index("Error: parity"):]
    assert error.count("cannot reach Triton") == 1, error  # one reason, not one per backend and batch size
    assert report.read_text() == '{"passed": true}\n' and sorted(report.parent.iterdir()) == [report]


def test_export_refuses_another_runs_export_dir(run_factory, tmp_path: Path) -> None:
    """Smaller: 'export' silently overwrote another model's export dir; now it refuses without --force."""
    first, second = run_factory("dcgan", "a"), run_factory("dcgan", "b")
    out = tmp_path / "export" / "shared"
    assert _invoke("export", first, "--out", out, "--max-batch", "2").exit_code == 0
    assert _invoke("export", first, "--out", out, "--max-batch", "2").exit_code == 0  # the same run: fine
    text = _clean(_invoke("export", second, "--out", out, "--max-batch", "2"))
    assert "already holds the export" in text and "--force" in text and str(first) in text
    result = _invoke("export", second, "--out", out, "--max-batch", "2", "--force")
    assert result.exit_code == 0, result.output
    assert str(second) in (out / "manifest.json").read_text()


def test_repo_on_a_run_dir_says_so(run_factory, tmp_path: Path) -> None:
    """Smaller: 'repo RUN_DIR' said the export 'failed'; it now says it is a run dir and gives the command."""
    run = run_factory("dcgan")
    text = _clean(_invoke("repo", run, "--out", tmp_path / "repo"))
    assert "training run dir" in text and f"gandeploy export {run}" in text and "failed" not in text


def test_parity_checks_the_manifest_hashes(run_factory, tmp_path: Path) -> None:
    """Smaller: 'parity' did not check the manifest hashes ('repo' does): an altered model.onnx that still
    computes the same numbers passed."""
    import onnx

    out = tmp_path / "export" / "dcgan-tiny"
    assert _invoke("export", run_factory("dcgan"), "--out", out, "--max-batch", "2").exit_code == 0
    model = onnx.load(str(out / "model.onnx"))
    model.doc_string = "edited after export"  # same weights, same outputs, other bytes
    onnx.save(model, str(out / "model.onnx"))
    result = CliRunner().invoke(main, ["parity", str(out), "--backends", "onnxruntime", "--report",
                                       str(tmp_path / "rep")])
    assert result.exit_code == 1, result.output
    assert "does not match its manifest" in result.output and "model.onnx was modified after export" in result.output

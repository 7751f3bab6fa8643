"""The model repository: protobuf configs, layout, provenance, tamper detection, atomic rebuilds, deployment files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gandeploy import wire
from gandeploy.cli import main
from gandeploy.contract import CONFIG_PARAMETER, ServedContract
from gandeploy.errors import ExportError, ServingError, UserInputError
from gandeploy.manifest import MANIFEST_FILE
from gandeploy.serving import configs as C
from gandeploy.serving.repository import build_repository, read_records, verify_repository
from gandeploy.utils.io import sha256_file

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "serving"


def copy_export(exports: dict[str, Path], name: str, dest: Path) -> Path:
    return Path(shutil.copytree(exports[name], dest / name))


def test_config_round_trips_and_validates() -> None:
    batching = C.Batching(16, (8, 16), 500, instances=2)
    cfg = C.python_model("m", [C.Tensor("z", "float32", (8,)), C.Tensor("label", "int64", (1,), reshape=())],
                         [C.Tensor("output", "float32", (1, 32, 32))], batching, {"nz": 8})
    text = C.config_text(cfg)
    assert 'backend: "python"' in text and "reshape {\n  }" in text
    assert "preferred_batch_size: 8" in text and "max_queue_delay_microseconds: 500" in text
    assert cfg.instance_group[0].count == 2 and cfg.parameters["nz"].string_value == "8"
    with pytest.raises(ServingError, match="preferred"):
        C.Batching(16, (32,), 100)


def test_ensemble_validation_catches_name_clash_and_dangling_steps() -> None:
    io_bytes = [C.Tensor("image_bytes", "bytes", (1,))]
    clash = C.ensemble_model("e", io_bytes, io_bytes, 4, [C.Step("p", {"x": "image_bytes"}, {"y": "image_bytes"})], {})
    with pytest.raises(ServingError, match="both input and output"):
        C.validate_config(clash)
    dangling = C.ensemble_model("e", [C.Tensor("seed", "int64", (1,))], [C.Tensor("image", "uint8", (2, 2, 1))], 4,
                                [C.Step("g", {"z": "z"}, {"output": "image"})], {})
    with pytest.raises(ServingError, match="reads \\['z'\\] before"):
        C.validate_config(dangling)


def test_local_repository_layout(repository: Path, exports: dict[str, Path]) -> None:
    assert (repository / "cgan-tiny_generator" / "1" / "model.onnx").is_file()
    assert (repository / "cgan-tiny_generator" / "1" / "model.py").is_file()
    assert (repository / "cgan-tiny_generator" / "1" / "gd_backend_common.py").is_file()
    for served in sorted(repository.glob("*/1/model.py")):  # every python model carries the rules file itself
        copy = served.parent / "gd_wire.py"
        assert copy.read_bytes() == Path(wire.__file__).read_bytes(), f"{copy} is not gandeploy/wire.py"
    one = C.read_config(repository / "cgan-tiny")  # local sampling: one python step, its own model.onnx
    assert one.backend == "python" and one.HasField("dynamic_batching") and one.max_batch_size == 16
    assert [t.name for t in one.input] == ["seed", "truncation", "label"] and one.output[0].name == "image"
    onnx = (exports["cgan-tiny"] / "model.onnx").read_bytes()
    assert (repository / "cgan-tiny" / "1" / "model.onnx").read_bytes() == onnx
    assert not (repository / "cgan-tiny_seed").exists() and not (repository / "cgan-tiny_postprocess").exists()
    gen = C.read_config(repository / "cgan-tiny_generator")
    assert gen.backend == "python" and gen.max_batch_size == 16 and gen.HasField("dynamic_batching")
    assert [t.name for t in gen.input] == ["z", "label"] and list(gen.input[1].reshape.shape) == []
    for model in ("cgan-tiny", "cyclegan-tiny", "mlp-tiny", "infogan-tiny"):
        assert C.read_config(repository / model).HasField("dynamic_batching"), model
    pipeline = C.read_config(repository / "cyclegan-tiny")
    assert pipeline.parameters["generator_model"].string_value == "cyclegan-tiny_generator"
    assert pipeline.parameters["tile_height"].string_value == "64"  # the export's max size bounds the tile
    assert (repository / "cyclegan-tiny" / "1" / "gd_pictures.py").is_file()
    assert C.read_config(repository / "mlp-tiny").output[0].name == "sample"


def test_repository_records_its_exports(repository: Path, exports: dict[str, Path]) -> None:
    records = verify_repository(repository)
    assert set(records) == set(exports)
    rec = records["cgan-tiny"]
    assert rec["export_manifest_sha256"] == sha256_file(exports["cgan-tiny"] / MANIFEST_FILE)
    onnx_sha = json.loads((exports["cgan-tiny"] / MANIFEST_FILE).read_text())["files"]["model.onnx"]["sha256"]
    assert rec["export_files"]["model.onnx"] == onnx_sha
    assert rec["models"]["cgan-tiny_generator"]["files"]["1/model.onnx"] == onnx_sha
    assert rec["served"]["inputs"] == [{"name": "seed", "dtype": "int64", "dims": [1]},
                                       {"name": "truncation", "dtype": "float32", "dims": [1], "optional": True},
                                       {"name": "label", "dtype": "int64", "dims": [1]}]
    ensemble = C.read_config(repository / "cgan-tiny")
    assert [t.name for t in ensemble.input if t.optional] == ["truncation"]
    contract = ServedContract.from_json(ensemble.parameters[CONFIG_PARAMETER].string_value)
    assert rec["contract"] == contract.to_json() and contract.num_classes == 3
    gen = C.read_config(repository / "cgan-tiny_generator")
    assert gen.parameters["export_manifest_sha256"].string_value == rec["export_manifest_sha256"]


def test_tampered_export_is_rejected_by_repo(exports: dict[str, Path], tmp_path: Path) -> None:
    export = copy_export(exports, "dcgan-tiny", tmp_path)
    blob = bytearray((export / "model.onnx").read_bytes())
    blob[-10] ^= 0xFF
    (export / "model.onnx").write_bytes(bytes(blob))
    out = tmp_path / "repo"
    result = CliRunner().invoke(main, ["repo", str(export), "--out", str(out)])
    assert result.exit_code == 1
    assert "model.onnx was modified after export" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_tampered_repository_fails_verification(exports: dict[str, Path], tmp_path: Path) -> None:
    out = build_repository([exports["mlp-tiny"]], tmp_path / "repo").root
    verify_repository(out)
    (out / "mlp-tiny" / "1" / "model.py").write_text("raise SystemExit\n")
    with pytest.raises(ServingError, match="mlp-tiny/1/model.py was modified"):
        verify_repository(out)
    result = CliRunner().invoke(main, ["serve", "--model-repository", str(out)])
    assert result.exit_code == 1 and "was modified" in result.output


def test_rebuild_replaces_models_and_keeps_other_exports(exports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "model_repository"
    out.mkdir()
    (out / "README.md").write_text("kept\n")
    build_repository([exports["mlp-tiny"]], out)
    build_repository([exports["dcgan-tiny"]], out, instances=2, preferred_batch_sizes=[4, 16])
    result = CliRunner().invoke(main, ["repo", str(exports["mlp-tiny"]), "--out", str(out), "--instances", "3"])
    assert result.exit_code == 0, result.output
    assert "Next: gandeploy serve --model-repository" in result.output
    assert set(read_records(out)) == {"mlp-tiny", "dcgan-tiny"}
    assert C.read_config(out / "mlp-tiny_generator").instance_group[0].count == 3
    dc = C.read_config(out / "dcgan-tiny_generator")
    assert dc.instance_group[0].count == 2 and list(dc.dynamic_batching.preferred_batch_size) == [4, 16]
    assert (out / "README.md").read_text() == "kept\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model_repository.")]  # no staging left
    verify_repository(out)


def test_foreign_model_directory_is_not_overwritten(exports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "repo"
    (out / "mlp-tiny").mkdir(parents=True)
    with pytest.raises(UserInputError, match="belongs to something other than 'gandeploy repo'"):
        build_repository([exports["mlp-tiny"]], out)


def test_model_of_another_export_dir_with_the_same_name_needs_force(exports: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    """Two export dirs both named mlp-tiny: the second 'repo' refuses to replace the first's served models
    (a running server would hot-reload them), names the owner, and replaces them with --force."""
    out = tmp_path / "repo"
    first = exports["mlp-tiny"]
    second = Path(shutil.copytree(first, tmp_path / "elsewhere" / "mlp-tiny"))
    build_repository([first], out)
    build_repository([first], out, instances=2)  # the same export again: a plain rebuild
    before = sha256_file(out / "mlp-tiny" / "config.pbtxt")
    with pytest.raises(UserInputError, match=f"built from the export {first.resolve()}.*--force"):
        build_repository([second], out)
    assert sha256_file(out / "mlp-tiny" / "config.pbtxt") == before
    assert read_records(out)["mlp-tiny"]["export_dir"] == str(first.resolve())
    result = CliRunner().invoke(main, ["repo", str(second), "--out", str(out)])
    assert result.exit_code == 1 and str(first.resolve()) in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["repo", str(second), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert read_records(out)["mlp-tiny"]["export_dir"] == str(second.resolve())
    verify_repository(out)


def test_bad_flags_are_user_errors(exports: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["repo", str(exports["mlp-tiny"]), "--out", str(tmp_path / "r"),
                                  "--preferred-batch-sizes", "4,999"])
    assert result.exit_code == 1 and "--preferred-batch-sizes" in result.output
    result = runner.invoke(main, ["repo", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_export_without_manifest_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(ExportError, match="no manifest.json"):
        build_repository([tmp_path / "half"], tmp_path / "repo")


# --- deployment files ------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_docker_compose_runs_ngc_triton_on_the_repository() -> None:
    (doc,) = load_yaml(SERVING / "docker-compose.yml")
    triton = doc["services"]["triton"]
    assert triton["build"]["args"]["TRITON_IMAGE"].startswith("nvcr.io/nvidia/tritonserver:")
    (volume,) = triton["volumes"]
    assert (SERVING / volume["source"]).resolve() == ROOT / "model_repository"
    assert f"--model-repository={volume['target']}" in triton["command"]
    published = {int(p.split(":")[-1]) for p in triton["ports"]}
    assert published == {8000, 8001, 8002}
    assert triton["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "FROM ${TRITON_IMAGE}" in (SERVING / "Dockerfile").read_text()


def test_kubernetes_deployment_and_service_agree() -> None:
    (dep,) = load_yaml(SERVING / "k8s" / "deployment.yaml")
    (svc,) = load_yaml(SERVING / "k8s" / "service.yaml")
    assert dep["kind"] == "Deployment" and svc["kind"] == "Service"
    pod = dep["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "model-repository")
    assert f"--model-repository={mount['mountPath']}" in container["args"] and mount["subPath"] == "model_repository"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]} == {8000: "http", 8001: "grpc", 8002: "metrics"}


def test_kserve_inference_service_points_at_the_repository() -> None:
    runtime, isvc = load_yaml(SERVING / "k8s" / "kserve-inferenceservice.yaml")
    assert runtime["kind"] == "ServingRuntime" and isvc["kind"] == "InferenceService"
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] and model["modelFormat"]["name"] == "triton"
    assert model["storageUri"].rstrip("/").endswith("/model_repository")
    args = runtime["spec"]["containers"][0]["args"]
    assert args[0] == "tritonserver" and "--model-repository=/mnt/models" in args and "--http-port=8080" in args

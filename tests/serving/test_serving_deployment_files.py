"""serving/: every manifest validated offline against real schemas, the compose file parsed, the tritonserver
flags checked against the real 2.51 binary, and the NGC release / TensorRT pins kept in step."""

from __future__ import annotations

import copy
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from manifest_schemas import validate

from gandeploy.models.io import GeneratorIO
from gandeploy.registry import get_model
from gandeploy.serving import ngc

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "serving"
MANIFESTS = sorted((SERVING / "k8s").glob("*.yaml"))
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_docs() -> list[dict[str, Any]]:
    return [d for p in MANIFESTS for d in docs(p)]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]
    if doc["kind"] == "Deployment":
        return spec["template"]["spec"]["containers"]
    return spec.get("containers", [])


def to_bytes(size: str) -> int:
    """Kubernetes quantities (2Gi, 512Mi) and compose sizes (2gb, 1g)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]i?|[kmgt]b?)?", str(size).strip())
    assert m, size
    unit = (m.group(2) or "").lower().rstrip("b")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "ki": 2**10, "mi": 2**20, "gi": 2**30,
             "ti": 2**40}[unit]
    return int(float(m.group(1)) * scale)


def default_cyclegan_manifest() -> dict[str, Any]:
    """What ``gandeploy export`` records for a default CycleGAN (max batch 64, sizes up to 512x512)."""
    spec = get_model("cyclegan")
    io: GeneratorIO = spec.io(spec.config_cls())
    return {"max_batch": 64, "image_sizes": {"max": [512, 512]}, "inputs": [t.to_json() for t in io.inputs],
            "outputs": [t.to_json() for t in io.outputs]}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_real_schemas(path: Path, version: str) -> None:
    for doc in docs(path):
        checked = validate(doc, version)
        assert checked.startswith(("Kubernetes", "KServe")), checked


def test_validators_reject_broken_manifests() -> None:
    by_kind = {d["kind"]: d for d in all_docs()}
    breakages = [
        ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(comand=["x"])),
        ("Deployment", lambda d: d["spec"].update(replicas="two")),
        ("Service", lambda d: d["spec"]["ports"][0].update(port="http")),
        ("ServingRuntime", lambda d: d["spec"]["containers"][0].update(comand=["x"])),
        ("ServingRuntime", lambda d: d["spec"].update(protocolVersion=["v2"])),
        ("ServingRuntime", lambda d: d["spec"]["volumes"][0]["emptyDir"].update(sizelimit="1Gi")),
        ("InferenceService", lambda d: d["spec"]["predictor"].update(modle={})),
        ("InferenceService", lambda d: d["spec"]["predictor"].update(scaleMetric="latency")),
        ("InferenceService", lambda d: d["spec"]["predictor"]["model"].update(storageUri=["pvc://x"])),
        ("InferenceService", lambda d: d["metadata"].update(lables={"app": "x"})),  # ObjectMeta, strict
        ("InferenceService", lambda d: d["spec"]["predictor"]["model"]["resources"].update(limit={})),
    ]
    for kind, breaks in breakages:
        doc = copy.deepcopy(by_kind[kind])
        breaks(doc)
        with pytest.raises(jsonschema.ValidationError):
            validate(doc, K8S_VERSIONS[0])


def test_containers_keep_nvidia_entrypoint() -> None:
    for doc in all_docs():
        for container in containers(doc):
            assert "command" not in container, f"{doc['kind']}: use args, not command (NVIDIA's entrypoint)"
            assert container["args"][0] == "tritonserver"


def tritonserver_flags() -> set[str]:
    from gandeploy.serving.server import find_tritonserver

    root = find_tritonserver()
    libs = root.parent.parent / "nvidia_pytriton.libs"
    out = subprocess.run([str(root / "bin" / "tritonserver"), "--help"], capture_output=True, text=True,
                         env={"LD_LIBRARY_PATH": str(libs)}, timeout=60)
    flags = set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", out.stdout + out.stderr, flags=re.M))
    assert "--model-repository" in flags, out.stdout[-500:] + out.stderr[-500:]
    return flags


def test_tritonserver_flags_are_accepted_by_release_2_51() -> None:
    accepted = tritonserver_flags()
    (compose,) = docs(SERVING / "docker-compose.yml")
    arg_lists = [compose["services"]["triton"]["command"]] + [c["args"] for d in all_docs() for c in containers(d)]
    used = {a.split("=", 1)[0] for args in arg_lists for a in args if a.startswith("--")}
    assert used and not used - accepted, f"flags tritonserver 2.51 does not accept: {sorted(used - accepted)}"
    assert all(args[0] == "tritonserver" for args in arg_lists)


def test_kserve_runtime_has_shm_readiness_and_one_knative_port() -> None:
    runtime = next(d for d in all_docs() if d["kind"] == "ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    (port,) = container["ports"]  # Knative routes to exactly one port
    if "grpc-v2" in runtime["spec"]["protocolVersions"]:
        assert port["name"] == "h2c", "gRPC on Knative needs the port named h2c"
    else:
        assert port["name"] in ("http1", "h2c") and "--allow-grpc=false" in container["args"]
    assert f"--http-port={port['containerPort']}" in container["args"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/v2/health/ready" and probe["port"] == port["containerPort"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm")
    volume = next(v for v in runtime["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"]["medium"] == "Memory"


def test_shm_holds_the_largest_default_batch() -> None:
    need = ngc.shm_bytes(default_cyclegan_manifest())
    assert need > 64 * 2**20  # the 64 MB container default would not do
    (compose,) = docs(SERVING / "docker-compose.yml")
    assert to_bytes(compose["services"]["triton"]["shm_size"]) >= need
    for doc in all_docs():
        volumes = doc["spec"]["template"]["spec"]["volumes"] if doc["kind"] == "Deployment" else \
            doc["spec"].get("volumes", [])
        for volume in volumes:
            if volume.get("emptyDir", {}).get("medium") == "Memory":
                assert to_bytes(volume["emptyDir"]["sizeLimit"]) >= need, doc["kind"]


def test_deployment_files_and_tensorrt_extra_pin_the_default_release() -> None:
    release = ngc.get_release(None)
    (compose,) = docs(SERVING / "docker-compose.yml")
    triton = compose["services"]["triton"]
    assert triton["build"]["args"]["TRITON_IMAGE"] == release.image
    assert triton["image"].endswith(f":{release.release}")
    assert f"ARG TRITON_IMAGE={release.image}" in (SERVING / "Dockerfile").read_text()
    for doc in all_docs():
        for container in containers(doc):
            assert container["image"].endswith(f":{release.release}"), doc["kind"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [r for r in extras["tensorrt"] if r.startswith("tensorrt")]
    assert pin.startswith("tensorrt==") and ngc.same_plan_version(pin.split("==")[1], release.tensorrt), pin
    assert any(r.startswith("polygraphy") for r in extras["tensorrt"])

"""Offline validation of the deployment files against real schemas.

Kubernetes built-ins: ``kubernetes-validate`` (PyPI) and the strict JSON schemas it bundles per Kubernetes
version. KServe kinds: KServe's own published CRD schemas (the ``openAPIV3Schema`` of
``config/crd/full/serving.kserve.io_{inferenceservices,servingruntimes}.yaml`` at release v0.20.0, vendored
verbatim under ``schemas/kserve-v0.20.0/``; its README names the source URL and commit), read as the API server
reads them with kubectl's strict field validation: an object with ``properties`` and without
``x-kubernetes-preserve-unknown-fields`` rejects unknown fields. ``metadata`` (only ``type: object`` in a CRD,
checked by the API server itself) is validated against Kubernetes' ObjectMeta from the bundled schemas.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

KSERVE_VERSION = "v0.20.0"
KSERVE_DIR = Path(__file__).parent / "schemas" / f"kserve-{KSERVE_VERSION}"
KSERVE_KINDS = {("serving.kserve.io/v1alpha1", "ServingRuntime"): "serving.kserve.io_servingruntimes",
                ("serving.kserve.io/v1beta1", "InferenceService"): "serving.kserve.io_inferenceservices"}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def schema_dir(version: str) -> str:
    """The bundled strict schema dir for a Kubernetes ``major.minor`` (the newest not newer than it)."""
    want = tuple(int(x) for x in version.split(".")[:2])
    ok = [v for v in kubernetes_validate.utils.all_versions() if tuple(int(x) for x in v.split(".")[:2]) <= want]
    return f"v{ok[-1]}-local-strict"


def structural_to_strict(node: Any) -> Any:
    """A CRD's structural schema as a JSON schema with strict field validation (unknown fields rejected)."""
    if isinstance(node, list):
        return [structural_to_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k == "properties" else structural_to_strict(v)) for k, v in node.items()}
    if "properties" in out:
        out["properties"] = {name: structural_to_strict(v) for name, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


@cache
def kserve_validator(key: tuple[str, str]) -> jsonschema.Draft4Validator:
    """KServe's published schema of one kind (OpenAPI v3.0 schemas are JSON Schema draft 4 plus extensions)."""
    schema = json.loads((KSERVE_DIR / f"{KSERVE_KINDS[key]}.openAPIV3Schema.json").read_text())
    return jsonschema.Draft4Validator(structural_to_strict(schema))


@cache
def object_meta_validator(version: str) -> jsonschema.Draft202012Validator:
    root = files("kubernetes_validate") / "kubernetes-json-schema" / schema_dir(version)
    defs = json.loads((root / "_definitions.json").read_text())
    return jsonschema.Draft202012Validator({**defs, "$ref": f"#/$defs/{OBJECT_META}"})


def validate(doc: dict[str, Any], version: str) -> str:
    """Validate one manifest; returns what it was checked against. Raises ``jsonschema.ValidationError``."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in KSERVE_KINDS:
        kserve_validator(key).validate(doc)  # type: ignore[arg-type]
        object_meta_validator(version).validate(doc.get("metadata", {}))
        return f"KServe {KSERVE_VERSION} CRD {key[1]} + Kubernetes {version} ObjectMeta"
    return "Kubernetes " + kubernetes_validate.validate(doc, version, strict=True)

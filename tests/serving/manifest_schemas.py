"""Offline validation of the deployment files against real schemas.

Kubernetes built-ins: ``kubernetes-validate`` (PyPI) and the strict JSON schemas it bundles per Kubernetes
version. KServe CRDs: ``schemas/kserve-v0.14.schema.json`` (the KServe-owned levels of KServe's published CRDs,
source cited inside) with the embedded Kubernetes types resolved against the same bundled definitions.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

KSERVE_SCHEMA = Path(__file__).parent / "schemas" / "kserve-v0.14.schema.json"
K8S_DEFS = "https://kubernetes.io/api/_definitions.json"
K8S_OPEN = "https://kubernetes.io/api/_open.json"
KSERVE_KINDS = {("serving.kserve.io/v1alpha1", "ServingRuntime"), ("serving.kserve.io/v1beta1", "InferenceService")}


def schema_dir(version: str) -> str:
    """The bundled strict schema dir for a Kubernetes ``major.minor`` (the newest not newer than it)."""
    want = tuple(int(x) for x in version.split(".")[:2])
    ok = [v for v in kubernetes_validate.utils.all_versions() if tuple(int(x) for x in v.split(".")[:2]) <= want]
    return f"v{ok[-1]}-local-strict"


@cache
def _registry(version: str) -> Registry:
    root = files("kubernetes_validate") / "kubernetes-json-schema" / schema_dir(version)
    defs = json.loads((root / "_definitions.json").read_text())
    # the CRDs embed PodSpec / Container without their top-level 'required' (and add fields beside them)
    opened: dict[str, Any] = {}
    for name in ("io.k8s.api.core.v1.PodSpec", "io.k8s.api.core.v1.Container"):
        text = json.dumps({"properties": defs["$defs"][name]["properties"]})
        opened[name] = json.loads(text.replace('"#/$defs/', f'"{K8S_DEFS}#/$defs/'))
    open_doc = {"$schema": defs["$schema"], "$id": K8S_OPEN, "$defs": opened}
    kserve = json.loads(KSERVE_SCHEMA.read_text())
    return Registry().with_resources([(K8S_DEFS, Resource.from_contents(defs)),
                                      (K8S_OPEN, Resource.from_contents(open_doc)),
                                      (kserve["$id"], Resource.from_contents(kserve))])


def validate(doc: dict[str, Any], version: str) -> str:
    """Validate one manifest; returns what it was checked against. Raises ``jsonschema.ValidationError``."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in KSERVE_KINDS:
        kserve = json.loads(KSERVE_SCHEMA.read_text())
        schema = {"$schema": kserve["$schema"], "$ref": f"{kserve['$id']}#/$defs/{key[1]}"}
        jsonschema.Draft202012Validator(schema, registry=_registry(version)).validate(doc)
        return f"KServe v0.14 CRD {key[1]} + Kubernetes {version}"
    return "Kubernetes " + kubernetes_validate.validate(doc, version, strict=True)

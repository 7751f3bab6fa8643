"""ONNX file helpers shared by the export steps: metadata_props, the checker, atomic saves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import onnx

from gandeploy.errors import ExportError
from gandeploy.utils.io import atomic_path


def set_metadata(model: onnx.ModelProto, props: Mapping[str, str]) -> None:
    """Replace/insert ``metadata_props`` entries (string → string)."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)


def get_metadata(path_or_model: Path | onnx.ModelProto) -> dict[str, str]:
    """``metadata_props`` of an ONNX file or model as a dict."""
    model = path_or_model if isinstance(path_or_model, onnx.ModelProto) else onnx.load(str(path_or_model),
                                                                                        load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def check_model(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    """``onnx.checker`` full check (includes strict shape inference); failures become ExportError."""
    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{what} fails the ONNX checker: {str(exc).splitlines()[0][:300]}") from None


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Serialise to one self-contained file, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return path


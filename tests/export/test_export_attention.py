"""Attention / spectral-norm generators through export: SN baked (plain weights), ONNX equals PyTorch eval,
attention MatMuls kept in FP32 in the FP16 graph, FP16 within the tolerance table, conditional BN batch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from gandeploy.config import RunConfig, save_run_config
from gandeploy.tolerances import tolerance_for
from gandeploy.export.onnx2fp16 import activation_matmul_nodes
from gandeploy.export.pipeline import export_run
from gandeploy.models.blocks import SelfAttention
from gandeploy.models.io import example_inputs, to_uint8
from gandeploy.registry import get_model
from gandeploy.runtimes.base import open_runtime
from gandeploy.training.checkpoint import save_checkpoint

from export_helpers import calibrate_batchnorm

MAX_BATCH = 64
CASES: dict[str, dict[str, Any]] = {
    "sagan": {"nz": 16, "ngf": 16, "ndf": 8, "channels": 3, "image_size": 32, "attn_res": 16},
    "sagan-cond": {"nz": 16, "ngf": 16, "ndf": 8, "channels": 1, "image_size": 32, "attn_res": 8,
                   "num_classes": 10, "embed_dim": 8},
    "biggan": {"nz": 16, "ngf": 4, "ndf": 8, "channels": 3, "image_size": 32, "attn_res": 16, "num_classes": 10,
               "shared_dim": 8},
}


def _lively_run(path: Path, model: str, arch: dict[str, Any]) -> Path:
    """A run dir whose attention is switched on (γ = 1) and whose BN statistics are measured, as after training."""
    spec = get_model(model)
    cfg = spec.config_cls(**arch)
    torch.manual_seed(0)
    g = spec.build_generator(cfg)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, SelfAttention):
                m.gamma.fill_(1.0)
    calibrate_batchnorm(g, spec.io(cfg), spec.num_classes(cfg))
    classes = tuple(f"class{i}" for i in range(cfg.num_classes)) if cfg.num_classes else None
    save_run_config(path, RunConfig(model=model, arch=cfg, class_names=classes, source="imported:test"))
    save_checkpoint(path / "checkpoints" / "latest.pt",
                    {"step": 0, "epoch": 0, "models": {"G": g.state_dict()}, "optimizers": {}})
    return path


@pytest.fixture(scope="module")
def attention_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("attention")
    out = {}
    for case, arch in CASES.items():
        model = case.split("-")[0]
        run = _lively_run(root / "runs" / case, model, arch)
        out[case] = export_run(run, root / "export" / case, fp16=True, trt=False, max_batch=MAX_BATCH).out_dir
    return out


def _feeds(out: Path, batch: int, seed: int) -> dict[str, np.ndarray]:
    from gandeploy.config import load_run_config

    run = load_run_config(out)
    return example_inputs(get_model(run.model).io(run.arch), batch, seed=seed)


@pytest.mark.parametrize("case", sorted(CASES))
def test_spectral_norm_is_baked_and_onnx_equals_pytorch_eval(attention_exports: dict[str, Path], case: str) -> None:
    out = attention_exports[case]
    graph = onnx.load(str(out / "model.onnx"))
    names = [t.name for t in graph.graph.initializer] + [n.name for n in graph.graph.node]
    assert not any("parametrizations" in n or n.endswith(("_u", "_v", ".original")) for n in names)
    assert "MatMul" in {n.op_type for n in graph.graph.node} and "Softmax" in {n.op_type for n in graph.graph.node}
    # plain weights only: the power-iteration vectors (1-D, length = a weight's fan) are not in the graph, and
    # no op computes a norm (sigma = u^T W v would need a reduction or a vector MatMul on weights)
    assert not ({"ReduceL2", "ReduceSumSquare", "Sqrt", "Div"} & {n.op_type for n in graph.graph.node})
    with open_runtime("torch", out) as ref_rt, open_runtime("onnxruntime", out) as ort_rt:
        for batch in (1, 5):
            feeds = _feeds(out, batch, seed=3)
            ref = ref_rt.run(feeds)["output"]  # the parametrised generator in eval mode, rebuilt from the run
            got = ort_rt.run(feeds)["output"]
            assert float(np.abs(got - ref).max()) <= tolerance_for("fp32").max_abs  # type: ignore[operator]
            assert ref.std() > 0.05, "outputs too flat for the comparison to mean anything"


@pytest.mark.parametrize("case", sorted(CASES))
def test_fp16_keeps_attention_matmuls_in_fp32_and_stays_within_tolerance(attention_exports: dict[str, Path],
                                                                         case: str) -> None:
    out = attention_exports[case]
    fp32 = onnx.load(str(out / "model.onnx"))
    attention = activation_matmul_nodes(fp32)
    assert len(attention) == 2, "QK^T and attention.V"
    fp16 = onnx.load(str(out / "model.fp16.onnx"))
    typed = onnx.shape_inference.infer_shapes(fp16)
    types = {v.name: v.type.tensor_type.elem_type for v in (*typed.graph.value_info, *typed.graph.input)}
    for node in fp16.graph.node:
        if node.name in attention:
            assert all(types.get(i) == onnx.TensorProto.FLOAT for i in node.input), node.name
    assert "MatMul" in {p.value for p in fp16.metadata_props if p.key == "gandeploy.fp16_fp32_ops"}.pop().split(",")
    tol, tol8 = tolerance_for("fp16"), tolerance_for("fp16", "uint8")
    with open_runtime("torch", out) as ref_rt, open_runtime("onnxruntime-fp16", out) as rt:
        feeds = _feeds(out, MAX_BATCH, seed=11)  # the largest exported batch, at the model's (only) size
        ref, got = ref_rt.run(feeds)["output"], rt.run(feeds)["output"]
    assert np.isfinite(got).all()
    assert float(np.abs(got - ref).max()) <= tol.max_abs and float(np.abs(got - ref).mean()) <= tol.mean_abs
    levels = np.abs(to_uint8(got).astype(int) - to_uint8(ref).astype(int))
    assert levels.max() <= tol8.uint8_max and levels.mean() <= tol8.uint8_mean


@pytest.mark.parametrize("case", ["biggan", "sagan-cond"])
def test_conditional_bn_batch_one_equals_the_item_inside_batch_64(attention_exports: dict[str, Path],
                                                                  case: str) -> None:
    out = attention_exports[case]
    feeds = _feeds(out, 64, seed=5)
    for backend in ("torch", "onnxruntime"):
        with open_runtime(backend, out) as rt:
            full = rt.run(feeds)["output"]
            for i in (0, 31, 63):
                one = rt.run({k: v[i:i + 1] for k, v in feeds.items()})["output"]
                assert float(np.abs(one[0] - full[i]).max()) <= 1e-5, (backend, i)

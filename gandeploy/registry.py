"""The one model registry: train, import, export, serve and ``--help`` all read it."""

from __future__ import annotations

from gandeploy.errors import unknown_choice
from gandeploy.models import biggan, cgan, cyclegan, dcgan, infogan, mlp, pix2pix, sagan
from gandeploy.models.common import ModelSpec

MODELS: dict[str, ModelSpec] = {
    m.SPEC.name: m.SPEC for m in (dcgan, cgan, infogan, sagan, biggan, mlp, cyclegan, pix2pix)}


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name``; an unknown name lists the choices with a 'did you mean'."""
    try:
        return MODELS[name]
    except KeyError:
        raise unknown_choice("model", name, MODELS) from None


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)

"""The one model registry: train, import, export, serve and ``--help`` all read it."""

from __future__ import annotations

from gandeploy.errors import unknown_choice
from gandeploy.models import biggan, cgan, cyclegan, dcgan, esrgan, infogan, mlp, pix2pix, sagan, srresnet, srvgg
from gandeploy.models.common import ModelSpec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    dcgan.SPEC, cgan.SPEC, infogan.SPEC, sagan.SPEC, biggan.SPEC, mlp.SPEC, cyclegan.SPEC, pix2pix.SPEC,
    srresnet.SPEC, srresnet.SRGAN_SPEC, esrgan.SPEC, srvgg.SPEC,
)}


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name``; an unknown name lists the choices with a 'did you mean'."""
    try:
        return MODELS[name]
    except KeyError:
        raise unknown_choice("model", name, MODELS) from None


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)

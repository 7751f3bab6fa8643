"""The demo page's controls come from the served contract alone (roles, classes, ranges), not from names."""

from __future__ import annotations

import numpy as np
import pytest

from gandeploy.contract import ServedContract
from gandeploy.models import io as gio
from gandeploy.serving.interpolation import interpolation_feeds
from gandeploy.models.io import slerp
from gandeploy.ui.widgets import given_values, widgets


def contract(*inputs: gio.TensorSpec, out: gio.TensorSpec | None = None, names=None) -> ServedContract:
    io = gio.GeneratorIO(inputs=tuple(inputs), outputs=(out or gio.image_output(1, 8, 8),))
    return ServedContract.from_io(io, max_batch=8, class_names=names)


def test_conditional_model_gets_seed_truncation_and_named_classes() -> None:
    c = contract(gio.latent(4, name="noise"), gio.class_label(3, name="y"), names=["cat", "dog", "owl"])
    kinds = [(w.name, w.kind) for w in widgets(c)]
    assert kinds == [("seed", "integer"), ("truncation", "slider"), ("label", "choice")]
    label = widgets(c)[2]
    assert label.choices == (("0: cat", 0), ("1: dog", 1), ("2: owl", 2))


def test_codes_become_a_choice_and_one_slider_per_continuous_entry() -> None:
    c = contract(gio.latent(4), gio.categorical_code(5), gio.continuous_code(2, low=-2.0, high=2.0))
    ws = widgets(c)
    code = next(w for w in ws if w.name == "code")
    assert code.kind == "choice" and [v for _, v in code.choices] == [0, 1, 2, 3, 4]
    sliders = [w for w in ws if w.name == "continuous"]
    assert [(w.component, w.low, w.high, w.default) for w in sliders] == [(0, -2.0, 2.0, 0.0), (1, -2.0, 2.0, 0.0)]
    values = [w.default if w.kind != "choice" else 3 for w in ws]
    values[0], values[1], values[-1] = 11, 0.0, 1.5  # seed, truncation off, continuous[1]
    given = given_values(c, ws, values)
    assert given == {"truncation": None, "code": 3, "continuous": [0.0, 1.5]}
    request = c.request([11], **given)
    assert set(request) == {"seed", "code", "continuous"} and request["continuous"].tolist() == [[0.0, 1.5]]


def test_translation_model_gets_an_upload_box_only() -> None:
    c = contract(gio.image_input(3), out=gio.image_output(3))
    assert [(w.name, w.kind) for w in widgets(c)] == [("image_bytes", "upload")]


def test_slerp_keeps_ends_and_norm_between() -> None:
    a, b = gio.latent_from_seed(1, 64), gio.latent_from_seed(2, 64)
    path = slerp(a, b, 9)
    assert path.shape == (9, 64) and np.array_equal(path[0], a) and np.array_equal(path[-1], b)
    norms = np.linalg.norm(path, axis=1)  # on a sphere-like arc, not through the origin as lerp would
    assert norms.min() > 0.9 * min(np.linalg.norm(a), np.linalg.norm(b))


@pytest.mark.parametrize("truncation", [None, 0.7])
def test_strip_ends_are_the_two_seeds_generator_feeds(truncation) -> None:
    c = contract(gio.latent(6, name="zz"), gio.class_label(4, name="cls"))
    feeds = interpolation_feeds(c, 3, 9, 5, {"label": 2, "truncation": truncation})
    assert set(feeds) == {"zz", "cls"} and feeds["cls"].shape == (5, 1) and (feeds["cls"] == 2).all()
    for row, seed in ((0, 3), (-1, 9)):
        alone = c.generator_feeds([seed], label=2, truncation=truncation)["zz"][0]
        np.testing.assert_array_equal(feeds["zz"][row], alone)


def test_ui_command_without_a_server_is_a_clear_error() -> None:
    from click.testing import CliRunner

    from gandeploy.cli import main
    from gandeploy.serving.server import free_port

    url = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["ui", "--url", url, "--wait", "1"])
    assert result.exit_code == 1 and f"no Triton server answered at {url}" in result.output
    assert "gandeploy serve" in result.output


def test_a_tiny_truncation_typed_on_the_page_is_refused() -> None:
    """Issue 22 item 1: t = 1e-9 hung the model instance; the page's request is refused before it is sent."""
    from gandeploy.errors import UserInputError

    c = contract(gio.latent(4), gio.class_label(3))
    ws = widgets(c)
    assert "0.02" in ws[1].label
    for typed in (1e-9, 0.01):
        given = given_values(c, ws, [5, typed, 1])
        with pytest.raises(UserInputError, match="'truncation' must be a finite number >= 0.02"):
            c.request([5], **given)
    assert c.request([5], **given_values(c, ws, [5, 0.02, 1]))["truncation"].tolist() == [[np.float32(0.02)]]

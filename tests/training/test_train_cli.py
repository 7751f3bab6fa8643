"""``gandeploy train``: help, clean errors for bad arguments, recipes, and the closing report."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path

import pytest

from gandeploy.registry import MODELS
from training_helpers import TINY_MLP, assert_clean_error, cli

from gandeploy.errors import UserInputError
from gandeploy.training.api import default_run_dir
from gandeploy.training.recipes import load_recipe, merge_train, shipped_recipe
from gandeploy.training.task import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_models_datasets_and_losses() -> None:
    result = cli("train", "--help")
    assert result.exit_code == 0
    for word in ("dcgan", "cgan", "mlp", "cyclegan", "digits", "ring8", "grid25", "folder:PATH", "horse2zebra",
                 "minimax", "nonsat", "lsgan", "wgan-gp", "hinge", "--recipe", "--resume", "--epochs", "--steps"):
        assert word in result.output, word


@pytest.mark.parametrize(("args", "needles"), [
    (["train", "gan", "digits"], ["unknown model 'gan'", "Choices: " + ", ".join(sorted(MODELS))]),
    (["train", "cgan", "digitz"], ["Did you mean 'digits'", "folder:PATH"]),
    (["train", "cgan", "digits", "--loss", "wasserstein"], ["'wasserstein' is not one of"]),
    (["train", "cgan", "digits", "--device", "gpu"], ["--device"]),
    (["train", "cgan", "digits", "--arch", "ngf"], ["KEY=VALUE"]),
    (["train", "cgan", "digits", "--epochs", "-1"], ["--epochs"]),
    (["train", "cgan"], ["missing MODEL and/or DATASET"]),
])
def test_bad_arguments_exit_2(args: list[str], needles: list[str]) -> None:
    assert_clean_error(cli(*args), 2, *needles)


@pytest.mark.parametrize(("args", "needles"), [
    (["train", "cgan", "ring8"], ["'ring8' holds 2D points", "mlp"]),
    (["train", "cgan", "digits", "--arch", "ngff=3"], ["--arch", "'ngff'", "ngf"]),
    (["train", "cgan", "digits", "--arch", "ngf=many"], ["ngf=many is not a valid int"]),
    (["train", "dcgan", "digits", "--image-size", "48"], ["image_size must be one of (32, 64, 128)"]),
    (["train", "cyclegan", "ring8"], ["does not fit cyclegan models"]),
    (["train", "mlp", "digits", "--batch-size", "5000", "--steps", "1"], ["--batch-size 5000"]),
    (["train", "mlp", "ring8", "--recipe", "no/such/recipe.toml"], ["--recipe", "does not exist"]),
])
def test_bad_values_are_clean_errors(args: list[str], needles: list[str], runs: Path) -> None:
    assert_clean_error(cli(*args, "--out", str(runs / "x"), "--device", "cpu"), 1, *needles)


def test_recipe_then_flags_override(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "mlp"\ndataset = "ring8"\ndescription = "test"\n'
                      '[arch]\nhidden = 12\nlayers = 2\n[train]\nloss = "lsgan"\nsteps = 50\nbatch_size = 16\n')
    out = tmp_path / "run"
    result = cli("train", "--recipe", str(recipe), "--steps", "3", "--arch", "hidden=10", "--out", str(out),
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["model"], cfg["dataset"], cfg["arch"]["hidden"], cfg["arch"]["layers"]) == ("mlp", "ring8", 10, 2)
    assert (cfg["train"]["loss"], cfg["train"]["steps"], cfg["train"]["batch_size"]) == ("lsgan", 3, 16)
    assert f"Next: gandeploy export {out} --fp16" in result.output and "losses.csv" in result.output
    # --resume keeps the recorded settings (loss, batch) and takes the new length
    result = cli("train", "mlp", "ring8", "--out", str(out), "--resume", "--steps", "5")
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["train"]["loss"], cfg["train"]["steps"], cfg["arch"]["hidden"]) == ("lsgan", 5, 10)
    assert_clean_error(cli("train", "mlp", "ring8", "--out", str(out), *TINY_MLP, "--steps", "1"), 1,
                       "--resume", "--out")


def test_bare_train_uses_the_shipped_recipe(tmp_path: Path) -> None:
    """Issue 22 item 6: bare 'train cgan digits' used generic defaults (lr 2e-4, 89 % label agreement) where the
    shipped recipe reaches ~98 %. Now it takes the recipe, says so first, and flags still override it."""
    recipe = load_recipe(REPO / "training" / "recipes" / "cgan-digits.toml")
    small = ["--steps", "1", "--batch-size", "8", "--device", "cpu", "--arch", "ngf=8", "--arch", "ndf=8"]
    out = tmp_path / "bare"
    result = cli("train", "cgan", "digits", "--out", str(out), *small)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert "shipped recipe" in first and "cgan-digits.toml" in first and "--no-recipe" in first, first
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["train"]["lr"], cfg["train"]["loss"]) == (recipe.train["lr"], recipe.train["loss"])
    assert cfg["arch"]["embed_dim"] == recipe.arch["embed_dim"] and cfg["arch"]["ngf"] == 8  # the flag wins
    assert (cfg["train"]["steps"], cfg["train"]["batch_size"]) == (1, 8)

    out = tmp_path / "generic"
    result = cli("train", "cgan", "digits", "--no-recipe", "--out", str(out), *small)
    assert result.exit_code == 0, result.output
    assert "recipe" not in result.output.splitlines()[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["lr"] == TrainConfig().lr != recipe.train["lr"]
    assert_clean_error(cli("train", "cgan", "digits", "--no-recipe", "--recipe",
                           str(REPO / "training" / "recipes" / "cgan-digits.toml")), 2, "--no-recipe")
    assert shipped_recipe("mlp", "ring8") is None  # no mlp-ring8.toml: generic defaults, nothing said
    result = cli("train", "mlp", "ring8", *TINY_MLP, "--steps", "1", "--out", str(tmp_path / "mlp"))
    assert result.exit_code == 0 and "recipe" not in result.output.splitlines()[0], result.output


def test_recipe_errors_name_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "cgan"\ndataset = "digits"\n[train]\nepoch = 3\n')
    with pytest.raises(UserInputError, match=r"bad.toml: unknown key 'epoch' in \[train\]"):
        load_recipe(bad)
    bad.write_text('model = "cgan"\nlearning_rate = 1\n')
    assert_clean_error(cli("train", "--recipe", str(bad)), 1, "unknown key 'learning_rate'", "bad.toml")
    bad.write_text('model = "cgan"\n[arch]\nwidth = 3\n')
    with pytest.raises(UserInputError, match="unknown key 'width' in \\[arch\\]"):
        load_recipe(bad)
    bad.write_text("model = ")
    with pytest.raises(UserInputError, match="not valid TOML"):
        load_recipe(bad)
    assert merge_train({"epochs": 5, "steps": 100}, {"epochs": 2}) == {"epochs": 2}


def test_shipped_recipes_load() -> None:
    recipes = sorted((REPO / "training" / "recipes").glob("*.toml"))
    assert len(recipes) >= 5
    for path in recipes:
        recipe = load_recipe(path)
        assert recipe.model and recipe.dataset, path


def _test_module(name: str, path: Path):  # type: ignore[no-untyped-def]
    """A helper module of another test folder, imported by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _cyclegan_helpers():  # type: ignore[no-untyped-def]
    """tests/cyclegan/cyclegan_helpers.py (tiny data set zips, a local HTTP server)."""
    return _test_module("cyclegan_helpers", REPO / "tests" / "cyclegan" / "cyclegan_helpers.py")


def _aligned_tar(tmp_path: Path, name: str) -> bytes:
    """A tiny ``<name>.tar.gz`` in the pix2pix authors' aligned layout (tests/pix2pix/test_pix2pix_data.py)."""
    import io
    import tarfile

    helpers = _test_module("pix2pix_data_helpers", REPO / "tests" / "pix2pix" / "test_pix2pix_data.py")
    src = helpers._aligned_root(tmp_path / "src" / name, size=16)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src, arcname=name)
    return buf.getvalue()


@pytest.mark.parametrize("path", sorted((REPO / "training" / "recipes").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_trains_a_step(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each recipe's architecture and settings are valid together (the SAGAN recipe's ``num_classes = 0`` once
    failed): one generator step with the recipe's own sizes, on the CPU (a GPU recipe's ``device = "cuda"`` is
    overridden). A data set that is downloaded on first use (horse2zebra, facades) is downloaded for real, from a
    local HTTP server holding a tiny archive of the authors' layout."""
    from gandeploy.data import CYCLEGAN_SETS, PIX2PIX_SETS
    from gandeploy.registry import get_model

    recipe = load_recipe(path)
    out, data_root = tmp_path / "run", tmp_path / "data"
    paired = get_model(str(recipe.model)).family == "paired"
    with contextlib.ExitStack() as stack:
        helpers = _cyclegan_helpers()
        if paired and recipe.dataset in PIX2PIX_SETS:
            body = _aligned_tar(tmp_path, str(recipe.dataset))
            url = stack.enter_context(helpers.serve_files({f"/sets/{recipe.dataset}.tar.gz": (body, None)}))
            monkeypatch.setenv("GANDEPLOY_PIX2PIX_URL", f"{url}/sets")
        elif recipe.dataset in CYCLEGAN_SETS:
            body = helpers.make_dataset_zip(tmp_path, str(recipe.dataset))
            url = stack.enter_context(helpers.serve_files({f"/sets/{recipe.dataset}.zip": (body, None)}))
            monkeypatch.setenv("GANDEPLOY_DATASET_URL", f"{url}/sets")
        result = cli("train", str(recipe.model), str(recipe.dataset), "--recipe", str(path), "--steps", "1",
                     "--out", str(out), "--monitor-every", "0", "--data-root", str(data_root), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (out / "checkpoints" / "latest.pt").is_file()
    if paired and recipe.dataset in PIX2PIX_SETS:
        assert (data_root / "pix2pix" / str(recipe.dataset) / "train").is_dir()  # downloaded and extracted
    elif recipe.dataset in CYCLEGAN_SETS:
        assert (data_root / str(recipe.dataset) / "trainA").is_dir()


def test_cgan_on_a_class_folder(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("circles", "squares", "stars"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    out = tmp_path / "run"
    result = cli("train", "cgan", f"folder:{tmp_path / 'data'}", "--steps", "1", "--batch-size", "8",
                 "--arch", "ngf=4", "--arch", "ndf=4", "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["class_names"] == ["circles", "squares", "stars"]
    assert (cfg["arch"]["num_classes"], cfg["arch"]["channels"], cfg["arch"]["image_size"]) == (3, 3, 32)
    assert default_run_dir("cgan", f"folder:{tmp_path / 'data'}").name == "cgan-folder-data"

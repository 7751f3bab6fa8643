"""CycleGAN training: the paper's rule as a GANTask, exact resume, LR decay, and quality on a known map."""

from __future__ import annotations

import torch

from gandeploy.training.quality import evaluate_translation_run
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.cyclegan import CycleGANOptions, ImagePool
from gandeploy.training.schedule import lr_factor
from gandeploy.training.task import TrainConfig
from cyclegan_helpers import make_unpaired_folder

TINY = {"image_size": 16, "ngf": 4, "ndf": 4, "n_blocks": 2, "n_layers_d": 2}


OPTION_KEYS = {"lambda_cycle", "lambda_identity", "pool_size", "load_size", "flip"}  # CycleGAN's own options


def _train(**kw) -> TrainConfig:
    base = dict(loss="lsgan", batch_size=2, device="cpu", checkpoint_every=10**6, load_size=18)
    values = {**base, **kw}
    options = {k: values.pop(k) for k in list(values) if k in OPTION_KEYS}
    return TrainConfig(**values, options=options)


def test_image_pool_is_deterministic_and_bounded():
    def run(seed):
        pool, gen, outs = ImagePool(3), torch.Generator().manual_seed(seed), []
        for i in range(6):
            outs.append(pool.query(torch.full((2, 1, 2, 2), float(i)), gen))
        return torch.stack(outs), pool.state()

    (o1, s1), (o2, s2), (o3, _) = run(0), run(0), run(1)
    assert torch.equal(o1, o2) and torch.equal(s1, s2) and s1.shape == (3, 1, 2, 2)
    assert torch.equal(o1[0], torch.zeros(2, 1, 2, 2))  # filling: returned as given
    assert not torch.equal(o1, o3)  # later queries swap in stored fakes at random
    assert {float(v) for v in o1[3:].flatten()} - {0.0, 1.0, 2.0, 3.0, 4.0, 5.0} == set()
    assert torch.equal(ImagePool(0).query(o1[5], torch.Generator()), o1[5])


def test_lr_factor_matches_reference_rule():
    # reference lambda_rule with epoch_count=1, n_epochs=100, n_epochs_decay=100
    assert [lr_factor(e, 100, 100) for e in (0, 99, 100)] == [1.0, 1.0, 1.0 - 1 / 101]
    assert abs(lr_factor(199, 100, 100) - 1 / 101) < 1e-12 and lr_factor(200, 100, 100) == 0.0
    assert lr_factor(5, 1, 0) == 1.0  # no decay epochs: constant


def test_resume_is_exact_and_lr_decays(tmp_path):
    data = make_unpaired_folder(tmp_path / "pair", size=20)  # 5 A, 4 B images: 2 steps per epoch at batch 2
    train = _train(epochs=1, epochs_decay=2, pool_size=3, seed=3)
    full = train_run("cyclegan", f"folder:{data}", train, tmp_path / "full", arch=TINY)
    state = load_checkpoint(full / "checkpoints" / "latest.pt")
    assert state["step"] == 6  # (1 constant + 2 decay epochs) x 2 steps
    assert state["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0  # linear decay reached zero
    assert state["extra"]["pool_fake_A"].shape == (3, 3, 16, 16)
    assert sorted(state["models"]) == ["D_A", "D_B", "G_A", "G_B"]
    assert sorted(p.name for p in (full / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png",
                                                                     "epoch_003.png"]

    part = train_run("cyclegan", f"folder:{data}", train.replace(steps=3), tmp_path / "part", arch=TINY)
    assert load_checkpoint(part / "checkpoints" / "latest.pt")["step"] == 3
    resumed = train_run("cyclegan", f"folder:{data}", train, tmp_path / "part", arch=TINY, resume=True)
    other = load_checkpoint(resumed / "checkpoints" / "latest.pt")
    for key in state["models"]:
        for name, tensor in state["models"][key].items():
            assert torch.equal(tensor, other["models"][key][name]), f"{key}.{name} differs after resume"
    for side in ("pool_fake_A", "pool_fake_B"):
        assert torch.equal(state["extra"][side], other["extra"][side])


def test_digits2inverted_beats_identity_baseline(tmp_path):
    train = TrainConfig(loss="lsgan", steps=40, batch_size=8, lr=5e-4, device="cpu", checkpoint_every=10**6)
    run = train_run("cyclegan", "digits2inverted", train, tmp_path / "digits",
                    arch={"image_size": 16, "ngf": 8, "ndf": 8, "n_blocks": 2, "n_layers_d": 2})
    score = evaluate_translation_run(run)
    print(score.summary())
    assert score.n == 148
    assert score.model_mae < 0.5 * score.identity_mae  # a clear margin over doing nothing


def test_train_cli_horse2zebra_layout(tmp_path):
    """``gandeploy train cyclegan horse2zebra --data-root D`` on a tiny generated horse2zebra-layout folder."""
    from click.testing import CliRunner

    from gandeploy.cli import main

    make_unpaired_folder(tmp_path / "data" / "horse2zebra", size=24)
    out = tmp_path / "run"
    args = ["train", "cyclegan", "horse2zebra", "--data-root", str(tmp_path / "data"), "--out", str(out),
            "--image-size", "16", "--arch", "ngf=4", "--arch", "ndf=4", "--arch", "n_blocks=2",
            "--arch", "n_layers_d=2", "--steps", "2", "--batch-size", "1", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"Next: gandeploy export {out}" in result.output
    state = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert state["step"] == 2 and sorted(state["optimizers"]) == ["D", "G"]
    assert (out / "samples" / "epoch_001.png").is_file() and (out / "losses.csv").is_file()
    header = (out / "losses.csv").read_text().splitlines()[0]
    assert header == "step,epoch,D_A,G_A,cycle_A,idt_A,D_B,G_B,cycle_B,idt_B"

    from gandeploy.training.checkpoint import load_generator

    generator, run = load_generator(out)  # G_A, rebuilt from config.json like export does
    assert run.arch.image_size == 16 and run.arch.n_blocks == 2 and run.dataset == "horse2zebra"
    with torch.no_grad():
        y = generator(torch.zeros(1, 3, 20, 28))  # any multiple of 4
    assert y.shape == (1, 3, 20, 28) and float(y.abs().max()) <= 1.0

    small = CliRunner().invoke(main, [*args[:5], "--out", str(tmp_path / "r3"), "--image-size", "16", "--steps", "1",
                                      "--device", "cpu"])  # default PatchGAN depth 3 needs >= 24 px
    assert small.exit_code == 1 and "--image-size 24" in small.output and "Traceback" not in small.output
    missing = CliRunner().invoke(main, ["train", "cyclegan", f"folder:{tmp_path / 'data'}", "--out",
                                        str(tmp_path / "r2"), "--steps", "1", "--device", "cpu"])
    assert missing.exit_code == 1 and "no trainA/" in missing.output and "Traceback" not in missing.output


def test_recipes_parse():
    from pathlib import Path

    from gandeploy.training.recipes import load_recipe, make_train_config

    root = Path(__file__).resolve().parents[2] / "training" / "recipes"
    h2z = load_recipe(root / "cyclegan-horse2zebra.toml")
    cfg = make_train_config(h2z.train, "recipe", CycleGANOptions)
    assert (h2z.model, h2z.dataset, cfg.epochs, cfg.epochs_decay, cfg.batch_size) == ("cyclegan", "horse2zebra",
                                                                                      100, 100, 1)
    assert (h2z.arch["n_blocks"], h2z.arch["ngf"], h2z.arch["image_size"], cfg.options["pool_size"]) == (9, 64, 256, 50)
    digits = load_recipe(root / "cyclegan-digits2inverted.toml")
    assert digits.dataset == "digits2inverted" and make_train_config(digits.train, "recipe", CycleGANOptions).loss == "lsgan"

"""The training config: YAML and JSON files, their errors, ``--set`` overrides, the CLI's flags over a config file,
and the fields of removed trial code (the feature-space discriminator, the content feature cache): an old run's config
that sets them to what the trainer still does loads, one that asks for the removed code is refused in one line naming
the field."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from test_training import SIZE, _cfg, _one_line_error, make_data

from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.losses import LossWeights
from semstyle.training.config import TRIAL_COMMIT, TrainConfig, apply_overrides

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest

# what an old run's config.json had for the removed fields when it used what the trainer still does
OLD_FIELDS: dict[str, Any] = {"discriminator": "image", "d_taps": ["relu3_1", "relu4_1"], "content_cache": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("config_data"), ((48, 40), (40, 44), (44, 40), (40, 48)))


# ---------------------------------------------------------------- --set
def test_overrides_reach_nested_fields_and_read_values_as_yaml() -> None:
    base = {"steps": 10, "weights": {"adv": 0.05, "tv": 0.0}}
    got = apply_overrides(base, ["weights.adv=0", "betas=[0.9, 0.99]", "channels_last=true", "lr_d=2e-4",
                                 "discriminator_init="])
    assert got == {"steps": 10, "weights": {"adv": 0, "tv": 0.0}, "betas": [0.9, 0.99], "channels_last": True,
                   "lr_d": 2e-4, "discriminator_init": ""}
    assert base["weights"] == {"adv": 0.05, "tv": 0.0}  # the input is not changed
    cfg = TrainConfig.from_dict(got)
    assert cfg.weights.adv == 0 and cfg.betas == (0.9, 0.99) and cfg.channels_last is True and cfg.lr_d == 2e-4
    with pytest.raises(InputError, match="KEY=VALUE"):
        apply_overrides(base, ["weights.adv"])
    with pytest.raises(InputError, match="not a mapping"):
        apply_overrides(base, ["steps.x=1"])


def test_cli_set_overrides_the_config_file(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = use_fake_trainer(monkeypatch)
    (tmp_path / "c.yaml").write_text(f"content_dir: {data / 'content'}\nstyle_dir: {data / 'style'}\n"
                                     "weights:\n  adv: 0.05\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--set", "weights.adv=0.2", "--set",
                 "lr_d=2e-4", "--out", str(tmp_path / "r")]) == 0
    assert seen[0].weights.adv == 0.2 and seen[0].lr_d == 2e-4


@pytest.mark.parametrize(("pair", "match"), [("weights.adv", "KEY=VALUE"), ("weights.nope=1", "nope"),
                                             ("stpes=3", "stpes"), ("lr_d=fast", "lr_d must be a float")])
def test_cli_bad_set_is_one_line(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], pair: str,
                                 match: str) -> None:
    code = main(["train", "--content-dir", str(data / "content"), "--style-dir", str(data / "style"),
                 "--out", str(tmp_path / "r"), "--set", pair])
    _one_line_error(capsys, code, match)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- fields of removed trial code
def test_an_old_runs_config_with_the_removed_fields_still_loads(data: Path, tmp_path: Path) -> None:
    cfg = _cfg(data, tmp_path / "r", 3)
    old = {**json.loads(json.dumps(cfg.to_json())), **OLD_FIELDS, "semantic": "none"}  # as its config.json had it
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert TrainConfig.load(tmp_path / "old.json") == cfg
    (tmp_path / "old.yaml").write_text("content_dir: c\nstyle_dir: s\ndiscriminator: image\n"
                                       "d_taps: [relu4_1]\ncontent_cache: false\nsemantic: none\n")
    assert TrainConfig.load(tmp_path / "old.yaml") == TrainConfig(content_dir="c", style_dir="s")


def test_the_shipped_weights_training_record_loads_as_a_config() -> None:
    manifest = json.loads(resources.files("semstyle").joinpath("weights", "MANIFEST.json").read_text())
    config = manifest["record"]["config"]
    assert config["discriminator"] == "image" and "d_taps" in config  # written before the fields were removed
    cfg = TrainConfig.from_dict(config)
    assert (cfg.steps, cfg.num_scales, cfg.semantic) == (config["steps"], 2, "none")
    temporal = TrainConfig.from_dict(manifest["temporal_record"]["config"])  # the nested motion reads back
    assert temporal.weights.temporal > 0 and temporal.motion.shift > 0


@pytest.mark.parametrize(("changes", "needle"), [({"discriminator": "feature"}, "discriminator: 'feature'"),
                                                 ({"content_cache": True}, "content_cache: True")])
def test_a_config_asking_for_removed_trial_code_is_refused_naming_the_field(changes: dict[str, Any],
                                                                             needle: str) -> None:
    with pytest.raises(InputError) as err:
        TrainConfig.from_dict({"content_dir": "c", **changes})
    msg = str(err.value)
    assert needle in msg and f"removed after {TRIAL_COMMIT}" in msg and f"git show {TRIAL_COMMIT}:" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(("pair", "needle"), [("discriminator=feature", "discriminator: 'feature'"),
                                              ("content_cache=true", "content_cache: True"),
                                              ("semantic=attention", "semantic: attention was measured")])
def test_cli_asking_for_removed_trial_code_is_one_line(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        pair: str, needle: str) -> None:
    code = main(["train", "--content-dir", str(data / "content"), "--style-dir", str(data / "style"),
                 "--out", str(tmp_path / "r"), "--set", pair])
    _one_line_error(capsys, code, needle)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- configuration and CLI
def test_train_config_from_yaml(tmp_path: Path) -> None:
    p = tmp_path / "cfg.yaml"
    p.write_text("content_dir: c\nstyle_dir: s\nsteps: 7\nbetas: [0.0, 0.9]\nweights:\n  adv: 0.5\n"
                 "  style_layers: [relu1_1, relu2_1]\n")
    cfg = TrainConfig.load(p)
    assert (cfg.steps, cfg.betas) == (7, (0.0, 0.9))
    assert cfg.weights == LossWeights(adv=0.5, style_layers=("relu1_1", "relu2_1"))
    cfg.check()
    # JSON works too, and the result round-trips
    j = tmp_path / "cfg.json"
    j.write_text(json.dumps(cfg.to_json()))
    assert TrainConfig.load(j) == cfg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("steps: 5\nlearning_rate: 0.1\n", r"unknown training config keys \['learning_rate'\]"),
        ("weights:\n  lambda_adv: 1\n", r"unknown loss weights \['lambda_adv'\]"),
        ("- a\n- b\n", "must be a mapping"),
    ],
)
def test_train_config_refuses_bad_files(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        TrainConfig.load(p)


def test_train_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read training config"):
        TrainConfig.load(tmp_path / "nope.yaml")


def test_cli_train_needs_content_dir(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--style-dir", str(data / "style"), "--out", str(tmp_path / "r")])
    _one_line_error(capsys, code, "--content-dir")
    assert not (tmp_path / "r").exists()


def test_cli_train_unknown_config_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.yaml").write_text("stpes: 3\n")
    code = main(["train", "--config", str(tmp_path / "c.yaml")])
    _one_line_error(capsys, code, "stpes")


def use_fake_trainer(monkeypatch: pytest.MonkeyPatch) -> list[TrainConfig]:
    """Stand a trainer that only records its config in for the real one; returns the configs it saw."""
    seen: list[TrainConfig] = []

    class Fake:
        def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
            seen.append(cfg)
            self.step, self.run, self.d = cfg.steps, Path(cfg.out), type("D", (), {"rank": 0})()

        def fit(self, progress: bool = True) -> list:
            return []

        def close(self) -> None:
            pass

    monkeypatch.setattr("semstyle.training.trainer.Trainer", Fake)
    return seen


def test_cli_flags_override_the_config_file(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = use_fake_trainer(monkeypatch)
    text = f"content_dir: {data / 'content'}\nstyle_dir: {data / 'style'}\nsteps: 5\nsize: 64\n"
    (tmp_path / "c.yaml").write_text(text)
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--steps", "9", "--out", str(tmp_path / "r")]) == 0
    assert (seen[0].steps, seen[0].size, seen[0].out) == (9, 64, str(tmp_path / "r"))


def test_cli_resume_without_checkpoint(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fresh"
    code = main(["train", "--content-dir", str(data / "content"), "--style-dir", str(data / "style"),
                 "--out", str(out), "--size", str(SIZE), "--resume", "--no-progress"])
    _one_line_error(capsys, code, "no checkpoint")
    assert not out.exists()  # a failed start leaves nothing behind

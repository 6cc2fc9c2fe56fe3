"""``--resume`` continues a run only with the configuration it was started with (the trainer and the distiller
share one check): a changed field that changes the run is refused in one line naming it, before anything in the
run folder is touched; fields that only say where to stop, log or checkpoint may change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_training import SIZE, _cfg, make_data

from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.losses import LossWeights
from semstyle.training.checkpoint import check_resumable, latest_checkpoint
from semstyle.training.config import TRIAL_COMMIT
from semstyle.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data, run folder) of a one-step run with a checkpoint at step 1."""
    root = tmp_path_factory.mktemp("resume")
    (root / "data").mkdir()
    data = make_data(root / "data", ((40, 40), (40, 40), (40, 40), (40, 40)))
    tr = Trainer(_cfg(data, root / "run", 1, ckpt_every=1))
    tr.fit(progress=False)
    tr.close()
    return data, root / "run"


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_resume_with_a_changed_config_is_refused_naming_the_fields(run: tuple[Path, Path]) -> None:
    data, out = run
    before = _snapshot(out)
    changed = _cfg(data, out, 2, ckpt_every=1, lr=2e-4, betas=(0.9, 0.999), num_scales=3,  # D no longer fits
                   weights=LossWeights(adv=0.1))
    with pytest.raises(InputError) as err:
        Trainer(changed, resume=True)
    msg = str(err.value)
    assert "different betas, lr, num_scales, weights.adv " in msg and "\n" not in msg
    assert _snapshot(out) == before  # a refused resume leaves the run as it was


def test_resume_with_more_steps_and_other_logging_continues(run: tuple[Path, Path]) -> None:
    data, out = run  # betas are a tuple here and a list in the checkpoint's JSON: the same values
    tr = Trainer(_cfg(data, out, 3, ckpt_every=2, log_every=2, keep_last=1), resume=True)
    tr.close()
    assert tr.step == 1


def test_cli_resume_with_a_changed_config_is_one_line_and_exit_2(run: tuple[Path, Path],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, out = run
    before = _snapshot(out)
    code = main(["train", "--content-dir", str(data / "content"), "--style-dir", str(data / "style"),
                 "--out", str(out), "--size", str(SIZE), "--batch", "2", "--lr", "1e-4", "--precision", "fp32",
                 "--steps", "2", "--image-every", "0", "--seed", "3", "--set", "weights.tv=0.5",
                 "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semstyle: error: --resume with a different seed, weights.tv "), err
    assert _snapshot(out) == before


def _old_run(run: tuple[Path, Path], dest: Path, **fields: object) -> Path:
    """A copy of ``run``'s folder whose checkpoint config also has ``fields`` (as a run of an older semstyle that
    still had them wrote it)."""
    shutil.copytree(run[1], dest)
    ckpt = latest_checkpoint(dest)
    assert ckpt is not None
    state = json.loads((ckpt / "state.json").read_text())
    state["config"].update(fields)
    (ckpt / "state.json").write_text(json.dumps(state))
    return dest


def test_resume_of_a_run_started_before_the_trial_fields_were_removed(run: tuple[Path, Path], tmp_path: Path) -> None:
    out = _old_run(run, tmp_path / "old", discriminator="image", d_taps=["relu3_1", "relu4_1"], content_cache=False)
    tr = Trainer(_cfg(run[0], out, 2, ckpt_every=1), resume=True)
    tr.fit(progress=False)
    tr.close()
    assert tr.step == 2


def test_resume_of_a_run_of_removed_trial_code_is_refused_naming_the_field(run: tuple[Path, Path],
                                                                            tmp_path: Path) -> None:
    out = _old_run(run, tmp_path / "feature", discriminator="feature", content_cache=True)
    before = _snapshot(out)
    with pytest.raises(InputError) as err:
        Trainer(_cfg(run[0], out, 2, ckpt_every=1), resume=True)
    msg = str(err.value)
    assert "config sets discriminator: 'feature'" in msg and f"removed after {TRIAL_COMMIT}" in msg
    assert "\n" not in msg
    assert _snapshot(out) == before


def test_the_check_compares_nested_fields_and_json_round_trips() -> None:
    saved = {"out": "a", "steps": 3, "betas": [0.5, 0.999], "weights": {"adv": 0.05, "tv": 1.0}}
    check_resumable(saved, {"out": "b", "steps": 9, "betas": (0.5, 0.999), "weights": {"adv": 0.05, "tv": 1.0}},
                    frozenset({"out", "steps"}))
    with pytest.raises(InputError, match=r"different out, weights\.tv than the run was started with .*"
                                         r"only steps may change"):
        check_resumable(saved, {"out": "b", "steps": 3, "betas": (0.5, 0.999), "weights": {"adv": 0.05, "tv": 2.0}},
                        frozenset({"steps"}))

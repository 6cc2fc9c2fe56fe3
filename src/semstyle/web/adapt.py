"""The page's adaptation: one uploaded style picture in, a style model in the server's ``--models`` folder out
(``semstyle adapt`` on the bundled photos), with progress; the image tab then offers it by name."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semstyle.config import ADAPT_MINUTES, ADAPT_STEPS
from semstyle.training.adapt import AdaptEvent, adapt, run_folder
from semstyle.web.engine import Engine
from semstyle.web.forms import Progress, Upload, UserError

# the share of the progress bar each stage of an adaptation fills (AdaptEvent.stage → from, to)
SPANS = {"adapt": (0.05, 0.8), "scores": (0.8, 1.0)}
SPANS_WITH_STUDENT = {"adapt": (0.05, 0.4), "scores": (0.4, 0.45), "student": (0.45, 1.0)}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")  # a model's name: its file stem in the models folder


@dataclass(frozen=True)
class AdaptLimits:
    """What one adaptation from the page may be (``semstyle serve --max-adapt-minutes``)."""

    max_minutes: float = ADAPT_MINUTES  # wall time one adaptation may take at most
    steps: int = ADAPT_STEPS  # its generator updates at most (the CLI's default budget)
    crop: int | None = None  # training crop side (None: the recipe's); small values make tests quick

    def __post_init__(self) -> None:
        if not 0 < self.max_minutes <= 120:
            raise ValueError(f"max adaptation time must be in (0, 120] minutes, got {self.max_minutes}")
        if self.steps < 1:
            raise ValueError(f"adaptation steps must be >= 1, got {self.steps}")


def run_adapt(engine: Engine, limits: AdaptLimits, style: Upload | None, name: str, *, minutes: float,
              student: bool = False, progress: Progress | None = None) -> Path:
    """Adapt to an uploaded style picture and write ``NAME.safetensors`` into the server's models folder; returns
    its path. Raises UserError (and the trainer's one-line errors) for anything wrong with the request."""
    say = progress or (lambda f, d: None)
    folder = engine.shelf.folder
    if folder is None:
        raise UserError("this server keeps no style models: start it with semstyle serve --models DIR to adapt "
                        "from the page")
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise UserError("name the model with letters, digits, '-' and '_' (at most 48, starting with a letter or "
                        f"digit), got {name!r}")
    out = folder / f"{name}.safetensors"
    if out.exists():
        raise UserError(f"there is already a style model '{name}' on this server; choose another name")
    if not 0 < float(minutes) <= limits.max_minutes:
        raise UserError(f"minutes must be in (0, {limits.max_minutes:g}], got {minutes}")
    picture = engine.load(style, "style image", 0)  # adapt() keeps at most 1024 px of it
    src = engine.new_output(f"style_{name}.png")  # the picture as the trainer reads it, in the server's folder
    picture.save(src, format="PNG")

    spans = SPANS_WITH_STUDENT if student else SPANS

    def step(ev: AdaptEvent) -> None:
        lo, hi = spans[ev.stage]
        if ev.stage == "scores":
            say(lo, "measuring the default α")
        else:
            say(lo + (hi - lo) * min(ev.step / max(ev.total, 1), 1.0), f"{ev.stage}: step {ev.step} of {ev.total}")

    say(0.02, "reading the photos")
    try:
        adapt(src, out, minutes=float(minutes), steps=limits.steps, crop=limits.crop, student=bool(student),
              progress=False, callback=step)
    finally:
        shutil.rmtree(run_folder(out), ignore_errors=True)  # a page's run is not resumed: no checkpoints kept
    say(1.0, "done")
    return out


def adapt_tab(gr: Any, handle: Callable[..., tuple[str, Any]], limits: AdaptLimits, model_pick: Any,
              status: Callable[[str, str], str]) -> None:
    """The adapt tab: a style picture, a name, a time budget; the new model appears in ``model_pick`` (the image
    tab's choice of the server's models). ``handle(style, name, minutes, student, progress=)`` does the work and
    returns (the status HTML, the dropdown's update); ``status`` makes a status box's HTML."""
    with gr.Tab("Adapt", elem_id="tab-adapt"):
        gr.Markdown(f"Adapt a decoder to one style picture (on the bundled photos; `semstyle adapt --contents` "
                    f"takes your own) in at most {limits.max_minutes:g} minutes. The model is kept on this server "
                    "and offered on the Image tab under its name.")
        with gr.Row(equal_height=False):
            style = gr.Image(label="Style", type="filepath", sources=["upload"], elem_id="adapt-style", height=280)
            with gr.Column():
                name = gr.Textbox(label="Model name", placeholder="e.g. my_painting", elem_id="adapt-name")
                minutes = gr.Slider(0.5, limits.max_minutes, value=limits.max_minutes, step=0.5,
                                    label="Minutes at most", elem_id="adapt-minutes")
                student = gr.Checkbox(label="Also a real-time student (the fast decoder)", elem_id="adapt-student")
        button = gr.Button("Adapt", variant="primary", elem_id="adapt-run")
        box = gr.HTML(status("info", "Ready."), elem_id="adapt-status")

        def on_adapt(*values: Any, progress: Any = gr.Progress()) -> tuple:  # noqa: B008
            return handle(*values, progress=lambda f, d: progress(f, desc=d))

        button.click(on_adapt, [style, name, minutes, student], [box, model_pick], api_name="adapt",
                     preprocess=False, concurrency_id="adapt", concurrency_limit=1, show_progress_on=[box])


__all__ = ["AdaptLimits", "adapt_tab", "run_adapt"]

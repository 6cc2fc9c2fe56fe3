"""The page: a Gradio Blocks app over ``Engine``, and ``serve`` to run it.

Gradio is imported only inside ``build_demo``/``serve`` (after analytics are switched off), so
the handlers (``Handlers``) can be used and tested without it.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image

from semstyle import assets
from semstyle.config import ALPHA_MAX, FUSIONS
from semstyle.web.adapt import AdaptLimits, adapt_tab, run_adapt
from semstyle.web.engine import Engine
from semstyle.web.forms import (
    DECODER_CHOICES,
    PALETTE,
    SEMANTIC_CHOICES,
    Progress,
    Upload,
    UserError,
    WebRequest,
    user_message,
)
from semstyle.web.guard import BusyMessage, Confinement, QuietDisconnect, busy_message
from semstyle.web.video import WEB_SIZE, VideoLimits, run_video, video_tab

log = logging.getLogger(__name__)

TITLE = "semstyle — semantic style transfer"
NO_MODEL = "(none)"  # the model picker's empty choice
CSS = """
.semstyle-msg { padding: 0.6em 0.9em; border-radius: 6px; font-size: 0.95em; }
.semstyle-msg.error { background: #fdecea; color: #8a1c14; border: 1px solid #f5c2bd; }
.semstyle-msg.ok { background: #edf7ed; color: #1e4620; border: 1px solid #c3e6c3; }
.semstyle-msg.info { background: #f3f4f6; color: #374151; }
#result img, #content-overlay img, #style-overlay img { width: 100%; height: 100%; object-fit: contain; }
"""


@dataclass(frozen=True)
class ServeOptions:
    """How ``semstyle serve`` runs (``--host``, ``--port``, …)."""

    host: str = "127.0.0.1"
    port: int = 7860
    concurrency: int = 1  # requests worked on at once; the rest wait in the queue
    queue_size: int = 64  # requests waiting beyond this are refused with a message
    video: VideoLimits = field(default_factory=VideoLimits)  # the video tab's limits
    adapt: AdaptLimits = field(default_factory=AdaptLimits)  # the adapt tab's limits


class RunView(NamedTuple):
    """What the page shows after a click: result PNG path, overlays, a one-line status."""

    result: str | None
    content_overlay: Image.Image | None
    style_overlay: Image.Image | None
    status: str  # HTML: one message, escaped


def status_html(kind: str, text: str) -> str:
    """A message box for the page; ``kind`` is ok, error or info."""
    role = ' role="alert"' if kind == "error" else ""
    label = "Error: " if kind == "error" else ""
    return f'<div class="semstyle-msg {kind}" id="semstyle-{kind}"{role}>{label}{html.escape(text, quote=False)}</div>'


class Handlers:
    """The page's actions as plain functions of the form's raw values (Gradio file payloads or paths).

    With ``confine`` (as the server runs) every upload must lie in its folder, whatever path the
    payload names; without it (a library caller's own paths) any readable path is taken.
    """

    def __init__(self, engine: Engine, video_limits: VideoLimits | None = None,
                 confine: Confinement | None = None, adapt_limits: AdaptLimits | None = None) -> None:
        self.engine = engine
        self.video_limits = video_limits or VideoLimits()
        self.adapt_limits = adapt_limits or AdaptLimits()
        self.confine = confine

    def adapt(self, style: Any, name: str, minutes: float | None = None, student: bool = False, *,
              progress: Progress | None = None) -> tuple[str, dict[str, Any]]:
        """Adapt to an uploaded style picture: (a one-line status, the model list's update: every model)."""
        names = [NO_MODEL, *self.engine.style_models()]
        try:
            up = Upload.of(style)
            if self.confine is not None:
                self.confine.check(up, "style image")
            out = run_adapt(self.engine, self.adapt_limits, up, name,
                            minutes=float(minutes or self.adapt_limits.max_minutes), student=bool(student),
                            progress=progress)
            names = [NO_MODEL, *self.engine.style_models()]
            return status_html("ok", f"Done: '{out.stem}' is on the Image tab"), {"choices": names, "visible": True,
                                                                                  "__type__": "update"}
        except Exception as e:  # noqa: BLE001 - every failure becomes a message on the page
            log.info("adapt request failed: %s", e, exc_info=not isinstance(e, (UserError, ValueError)))
            return status_html("error", user_message(e)), {"choices": names, "__type__": "update"}

    def _checked(self, req: WebRequest) -> WebRequest:
        if self.confine is not None:
            for up, what in ((req.content, "content image"), (req.style, "style image"),
                             (req.content_labels, "content label map"), (req.style_labels, "style label map"),
                             (req.style_model, "style model"), *((u, "content strokes") for u in req.content_strokes),
                             *((u, "style strokes") for u in req.style_strokes)):
                self.confine.check(up, what)
        return req

    @staticmethod
    def request(content: Any, style: Any, semantic: str = "none", content_labels: Any = None,
                style_labels: Any = None, alpha: float = 1.0, preserve_color: bool = False, size: int = 512,
                decoder: str = "pretrained", refine: int = 0, fusion: str = "adain", style_model: Any = None,
                model: str | None = None, content_paint: Any = None, style_paint: Any = None) -> WebRequest:
        return WebRequest(
            content=Upload.of(content), style=Upload.of(style), semantic=str(semantic or "none"),
            content_labels=Upload.of(content_labels), style_labels=Upload.of(style_labels),
            alpha=float(alpha if alpha is not None else 1.0), preserve_color=bool(preserve_color),
            size=int(size or 0), decoder=str(decoder or "pretrained"), refine=int(refine or 0),
            fusion=str(fusion or "adain"), style_model=Upload.of(style_model),
            model="" if model in (None, NO_MODEL) else str(model),
            content_strokes=painted_layers(content_paint), style_strokes=painted_layers(style_paint),
        )

    def model_alpha(self, style_model: Any, model: str | None) -> float | None:
        """The default α of the style model a user just picked or uploaded (None: none, or unreadable)."""
        try:
            req = WebRequest(None, None, style_model=Upload.of(style_model),
                             model="" if model in (None, NO_MODEL) else str(model))
            if self.confine is not None:
                self.confine.check(req.style_model, "style model")
            found = self.engine.style_model(req)
        except Exception:  # noqa: BLE001 - Stylise reports the problem; picking only moves the slider
            return None
        return found[1].alpha if found is not None else None

    def run(self, *form: Any, progress: Progress | None = None) -> RunView:
        """Stylise; every failure comes back as a message, never as an exception."""
        names: dict[str, str] = {}
        try:
            req = self._checked(self.request(*form))
            names = _names(req)
            out = self.engine.run(req, progress)
            return RunView(str(out.path), out.content_overlay, out.style_overlay, status_html("ok", out.summary))
        except Exception as e:  # noqa: BLE001 - the page shows a message for everything
            return RunView(None, None, None, status_html("error", self._message(e, names)))

    def video(self, clip: Any, style: Any, alpha: float = 1.0, size: int = WEB_SIZE,
              consistency: float | None = None, decoder: str | None = None, *,
              progress: Progress | None = None) -> tuple[str | None, str]:
        """Stylise an uploaded clip: (the mp4's path or None, a one-line status); consistency None: the
        measurements' choice for the frame size."""
        try:
            clip_up, style_up = Upload.of(clip), Upload.of(style)
            if self.confine is not None:
                self.confine.check(clip_up, "video")
                self.confine.check(style_up, "style image")
            out = run_video(self.engine, self.video_limits, clip_up, style_up,
                            alpha=float(alpha if alpha is not None else 1.0), size=int(size or WEB_SIZE),
                            consistency=None if consistency is None else float(consistency),
                            decoder=decoder or "pretrained", progress=progress)
            return str(out), status_html("ok", f"Done: {out.name}")
        except Exception as e:  # noqa: BLE001 - every failure becomes a message on the page
            log.info("video request failed: %s", e, exc_info=not isinstance(e, (UserError, ValueError)))
            return None, status_html("error", user_message(e))

    def segment(self, *form: Any, progress: Progress | None = None) -> RunView:
        """The automatic co-segmentation of both images, without stylising."""
        names: dict[str, str] = {}
        try:
            req = self._checked(self.request(*form))
            names = _names(req)
            c, s, k = self.engine.segment(req, progress)
            note = f"automatic segmentation: {k} regions shared by both images"
            return RunView(None, c, s, status_html("info", note))
        except Exception as e:  # noqa: BLE001
            return RunView(None, None, None, status_html("error", self._message(e, names)))

    @staticmethod
    def _message(e: Exception, names: dict[str, str]) -> str:
        if not isinstance(e, (UserError, ValueError)) and type(e).__name__ not in ("InputError", "WeightsError"):
            log.exception("request failed")  # the traceback goes to the server log, never to the page
        return user_message(e, names)


def painted_layers(value: Any) -> tuple[Upload, ...]:
    """The layers of an image editor's value (Gradio's {"background", "layers", "composite"}; paths or payloads)."""
    if not value:
        return ()
    if not isinstance(value, dict):
        raise UserError(f"unexpected strokes of type {type(value).__name__}")
    return tuple(up for up in (Upload.of(layer) for layer in value.get("layers") or []) if up is not None)


def _names(req: WebRequest) -> dict[str, str]:
    ups = (req.content, req.style, req.content_labels, req.style_labels)
    return {str(u.path): u.name for u in ups if u is not None}


def _examples(kind: str) -> list[str]:
    found = assets.content_images() if kind == "content" else assets.style_images()
    return [str(p) for p in found]


def disable_analytics() -> None:
    """Switch telemetry off before Gradio is first imported (call it before any ``import gradio``).

    Gradio 6 reads ``GRADIO_ANALYTICS_ENABLED`` when a Blocks is made and before each analytics
    call; the Hugging Face Hub library it imports reads ``HF_HUB_DISABLE_TELEMETRY`` once, at import,
    which is why this runs first. ``build_demo`` also passes ``analytics_enabled=False`` to the Blocks.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_demo(engine: Engine, options: ServeOptions | None = None) -> Any:
    """The Gradio Blocks page over ``engine`` (queue configured, not launched)."""
    disable_analytics()
    import gradio as gr
    from gradio.utils import get_upload_folder

    opts = options or ServeOptions()
    lim = engine.limits
    # the folder Gradio keeps uploads (and the bundled examples it serves) in: the only one read from
    handlers = Handlers(engine, opts.video, Confinement(Path(get_upload_folder())), opts.adapt)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"## {TITLE}\nUpload a content photo and a style image (or pick a bundled example), choose the options "
            f"and press **Stylise**. Uploads up to {lim.max_upload_bytes / 2**20:.0f} MB and "
            f"{lim.max_pixels / 1e6:.0f} MP; results up to {lim.max_size} px, "
            f"{opts.concurrency} request{'s' if opts.concurrency > 1 else ''} at a time (the rest wait in a queue)."
        )
        with gr.Tab("Image", elem_id="tab-image"):
            content, style, style_model, model_pick, result, download = _picture_columns(gr, engine)
            semantic, fusion, decoder, alpha, size, refine, preserve = _option_controls(gr, lim.max_size)
            label_row, content_labels, style_labels = _label_row(gr)
            paint_row, content_paint, style_paint = _paint_controls(gr)
            with gr.Row():
                run_btn = gr.Button("Stylise", variant="primary", elem_id="run")
                seg_btn = gr.Button("Show the automatic segmentation", elem_id="segment")
            status = gr.HTML(status_html("info", "Ready."), elem_id="status")
            c_over, s_over = _region_views(gr)

        form = [content, style, semantic, content_labels, style_labels, alpha, preserve, size, decoder, refine, fusion,
                style_model, model_pick, content_paint, style_paint]

        def on_model(up: Any, name: str | None) -> Any:  # a picked model brings its own α
            a = handlers.model_alpha(up, name)
            return gr.update() if a is None else gr.update(value=a)

        for picker in (style_model, model_pick):
            picker.change(on_model, [style_model, model_pick], alpha, queue=False, preprocess=False,
                          api_visibility="private")

        def on_run(*values: Any, progress: Any = gr.Progress()) -> tuple:  # noqa: B008 - Gradio's idiom
            v = handlers.run(*values, progress=lambda f, d: progress(f, desc=d))
            dl = gr.DownloadButton(value=v.result, visible=v.result is not None)
            return v.result, dl, v.content_overlay, v.style_overlay, v.status

        def on_segment(*values: Any, progress: Any = gr.Progress()) -> tuple:  # noqa: B008
            v = handlers.segment(*values, progress=lambda f, d: progress(f, desc=d))
            return v.content_overlay, v.style_overlay, v.status

        # preprocess=False: the handlers get the uploads' paths and decode them with the size and
        # pixel limits themselves, so a bad upload becomes a message instead of a framework error
        run_btn.click(on_run, form, [result, download, c_over, s_over, status], api_name="stylize",
                      preprocess=False, concurrency_id="semstyle", show_progress_on=[result, status])
        seg_btn.click(on_segment, form, [c_over, s_over, status], api_name="segment", preprocess=False,
                      concurrency_id="semstyle", show_progress_on=[c_over, s_over])
        _mode_events(gr, semantic, label_row, paint_row, ((content, content_paint), (style, style_paint)))
        video_tab(gr, handlers.video, opts.video, status_html)
        adapt_tab(gr, handlers.adapt, opts.adapt, model_pick, status_html)
    demo.queue(default_concurrency_limit=opts.concurrency, max_size=opts.queue_size)
    return demo


def _label_row(gr: Any) -> tuple[Any, Any, Any]:
    """The row (hidden until ``--semantic labels``) where the two label maps are uploaded."""
    with gr.Row(visible=False) as label_row:
        content_labels = gr.Image(label="Content label map", type="filepath", sources=["upload"],
                                  image_mode=None, elem_id="content-labels", height=200)
        style_labels = gr.Image(label="Style label map", type="filepath", sources=["upload"],
                                image_mode=None, elem_id="style-labels", height=200)
    return label_row, content_labels, style_labels


def _picture_columns(gr: Any, engine: Engine) -> tuple[Any, ...]:
    """The Image tab's three columns: content, style (or a style model) and result, with the bundled examples."""
    with gr.Row(equal_height=False):
        with gr.Column():
            content = gr.Image(label="Content", type="filepath", sources=["upload", "clipboard"],
                               elem_id="content", height=300)
            gr.Examples([[p] for p in _examples("content")], inputs=[content], label="Bundled content photos")
        with gr.Column():
            style = gr.Image(label="Style", type="filepath", sources=["upload", "clipboard"],
                             elem_id="style", height=300)
            gr.Examples([[p] for p in _examples("style")], inputs=[style], label="Bundled style paintings")
            style_model, model_pick = _model_controls(gr, list(engine.style_models()))
        with gr.Column():
            result = gr.Image(label="Result", type="filepath", format="png", interactive=False,
                              elem_id="result", height=300, buttons=["download", "fullscreen"])
            download = gr.DownloadButton("Download PNG (full resolution)", visible=False, elem_id="download")
    return content, style, style_model, model_pick, result, download


def _region_views(gr: Any) -> tuple[Any, Any]:
    """The overlays of the regions found on the content and on the style."""
    with gr.Row():
        c_over = gr.Image(label="Content regions", type="pil", format="png", interactive=False,
                          elem_id="content-overlay", height=240)
        s_over = gr.Image(label="Style regions", type="pil", format="png", interactive=False,
                          elem_id="style-overlay", height=240)
    return c_over, s_over


def _mode_events(gr: Any, semantic: Any, label_row: Any, paint_row: Any, paintings: tuple[tuple[Any, Any], ...]
                 ) -> None:
    """The semantic mode shows the label-map uploads or the brushes; a new picture becomes its brush's canvas."""
    semantic.change(lambda m: (gr.Row(visible=m == "labels"), gr.Row(visible=m == "scribbles")), semantic,
                    [label_row, paint_row], queue=False, api_visibility="private")
    for picture, editor in paintings:  # paint over the picture itself
        picture.change(_paint_over, picture, editor, queue=False, api_visibility="private", preprocess=False)


def _paint_over(value: Any) -> dict[str, Any] | None:
    """A painting editor's new value when its picture changes: the picture as background, no strokes yet (the raw
    upload payload: a file that is not an image reaches Stylise, which says so, instead of failing here)."""
    path = value.get("path") if isinstance(value, dict) else value
    return {"background": path, "layers": [], "composite": None} if path else None


def _paint_controls(gr: Any) -> tuple[Any, Any, Any]:
    """Semantic "scribbles": a brush over the content and one over the style, with a palette of region colours."""
    brush = gr.Brush(colors=list(PALETTE), default_color=PALETTE[0], color_mode="fixed", default_size=12)
    with gr.Row(visible=False, elem_id="paint-row") as row:
        editors = tuple(
            gr.ImageEditor(label=f"Paint regions on the {what}: one colour per region, the same colour on both "
                                 "pictures for matching regions; a look-alike island cut off from a region's strokes "
                                 "goes to the region around it, so paint each island you want",
                           type="filepath", sources=[], transforms=[],
                           layers=False, brush=brush, eraser=gr.Eraser(default_size=16), format="png",
                           image_mode="RGBA", elem_id=f"{what}-paint", height=360)
            for what in ("content", "style"))
    return row, editors[0], editors[1]


def _model_controls(gr: Any, names: list[str]) -> tuple[Any, Any]:
    """A style model in place of the style image: an upload, or a pick from the server's --models folder."""
    with gr.Accordion("Style model (semstyle adapt)", open=bool(names), elem_id="style-model-box"):
        up = gr.File(label="Upload a style model (.safetensors): it is the style", file_types=[".safetensors"],
                     elem_id="style-model", height=90)
        pick = gr.Dropdown([NO_MODEL, *names], value=NO_MODEL, label="Or pick one of this server's",
                           elem_id="model-pick", visible=bool(names))
    return up, pick


def _option_controls(gr: Any, max_size: int) -> tuple[Any, ...]:
    """The image tab's option controls: semantic mode, fusion, decoder, α, size, refinement, colour."""
    with gr.Row():
        semantic = gr.Radio(list(SEMANTIC_CHOICES), value="none", label="Semantic mode", elem_id="semantic",
                            info="none: global style; auto: match regions found automatically; "
                                 "labels: your maps; scribbles: paint a few strokes per region")
        fusion = gr.Radio(list(FUSIONS), value="adain", label="Fusion", elem_id="fusion",
                          info="adain: each region takes its matched style region; attention: a weighted "
                               "mixture of the style's regions, same label preferred")
        decoder = gr.Radio(list(DECODER_CHOICES), value="pretrained", label="Decoder", elem_id="decoder",
                           info="finetuned: the adversarially fine-tuned decoder; temporal: trained for stable "
                                "video; fast: the distilled fast model")
    with gr.Row():
        alpha = gr.Slider(0.0, ALPHA_MAX, value=1.0, step=0.05, label="Style strength α", elem_id="alpha")
        size = gr.Slider(64, max_size, value=min(512, max_size), step=16,
                         label="Output size (longest side, px)", elem_id="size")
        refine = gr.Slider(0, 10, value=0, step=1, label="Refinement rounds (discriminator-guided)",
                           elem_id="refine")
        preserve = gr.Checkbox(value=False, label="Preserve the content's colours", elem_id="preserve")
    return semantic, fusion, decoder, alpha, size, refine, preserve


def launch(demo: Any, engine: Engine, options: ServeOptions, block: bool = False) -> Any:
    """Start serving ``demo``; return at once (``demo.block_thread()`` waits), or with ``block`` until Ctrl-C."""
    import gradio as gr
    from starlette.middleware import Middleware

    return demo.launch(
        server_name=options.host, server_port=options.port, max_file_size=engine.limits.max_upload_bytes,
        show_error=False, ssr_mode=False, prevent_thread_lock=not block, quiet=True, share=False,
        mcp_server=False, theme=gr.themes.Default(), css=CSS, footer_links=["settings"],
        app_kwargs={"middleware": [Middleware(QuietDisconnect),  # the first wraps the others
                                   Middleware(BusyMessage, message=busy_message(options.queue_size))]},
    )


__all__ = ["Handlers", "RunView", "ServeOptions", "build_demo", "disable_analytics", "launch", "status_html"]

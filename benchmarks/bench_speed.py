"""What makes 512² stylisation fast on this CPU: every optimisation tried, measured in one run (issue 7).

    .venv/bin/python benchmarks/bench_speed.py                     # 512², 5 rounds, writes docs/speed_study.md
    .venv/bin/python benchmarks/bench_speed.py --size 128 --repeats 1 --no-write   # smoke

Each variant runs the whole pipeline on tensors already in memory (a 512² photo and a 512²
painting, the bundled public-domain images): encode the content, encode the style (unless the
variant says "cached"), AdaIN, decode, clamp. The baseline is the canonical AdaIN pipeline
(``bench_stylize.Canonical``'s networks: eager fp32, NCHW). All variants are built first, warmed
up, then called round-robin for ``--repeats`` rounds, so load from other processes hits them
alike; a variant's figure is its median, and its ratio is median / canonical median. Quality: PSNR
of each output against the canonical output (fp32 rounding alone gives > 80 dB; bf16 ~45 dB).

Variants (see docs/speed_study.md for what each one does and which are kept):
channels_last, bf16 autocast, TorchScript freeze + optimize_for_inference (oneDNN conv+ReLU
fusion), torch.compile (inductor), int8 (dynamic quantisation, and onnxruntime static QDQ),
onnxruntime fp32, the style encoded at 256 px, a cached style, and the distilled fast model.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_stylize import machine_info  # noqa: E402

from semstyle import functional as FN  # noqa: E402
from semstyle.models import Decoder, VGGEncoder  # noqa: E402
from semstyle.models.weights import load_into  # noqa: E402

Run = Callable[[], torch.Tensor]


def load(path: Path, size: int) -> torch.Tensor:
    im = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()


def teacher() -> tuple[nn.Module, nn.Module]:
    enc, dec = VGGEncoder(), Decoder()
    load_into(enc, "pretrained", "encoder")
    load_into(dec, "pretrained", "decoder")
    return (nn.Sequential(*list(enc.layers.children())[:31]).eval().requires_grad_(False),
            dec.layers.eval().requires_grad_(False))


def pipeline(enc: Callable, dec: Callable, c: torch.Tensor, s: torch.Tensor, ctx: Callable = contextlib.nullcontext,
             style_feat: torch.Tensor | None = None) -> torch.Tensor:
    with torch.inference_mode(), ctx():
        cf = enc(c)
        sf = enc(s) if style_feat is None else style_feat
        out = dec(FN.adain(cf.float(), sf.float()).to(cf.dtype))
    return out.float().clamp(0, 1)


def bf16() -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16)


# ---------------------------------------------------------------------- variants
def build_variants(size: int, c: torch.Tensor, s: torch.Tensor, only: set[str] | None) -> dict[str, tuple[Run, str]]:
    """name → (call, note); a variant that cannot be built on this machine is left out with a note printed."""
    enc, dec = teacher()
    cl = torch.channels_last
    c_cl, s_cl = c.contiguous(memory_format=cl), s.contiguous(memory_format=cl)
    enc_cl = teacher()[0].to(memory_format=cl)
    dec_cl = teacher()[1].to(memory_format=cl)
    s_half = F.interpolate(s, scale_factor=0.5, mode="area")
    out: dict[str, tuple[Run, str]] = {}

    def add(name: str, make: Callable[[], Run], note: str) -> None:
        if only and name not in only and name != "canonical":
            return
        try:
            run = make()
            run()  # build / compile / first call outside the timings
            out[name] = (run, note)
        except Exception as e:  # noqa: BLE001 - a variant this platform cannot run is reported, not fatal
            print(f"{name}: not available here ({type(e).__name__}: {str(e).splitlines()[0][:120]})", flush=True)

    add("canonical", lambda: lambda: pipeline(enc, dec, c, s), "eager fp32 NCHW (baseline)")
    add("channels_last", lambda: lambda: pipeline(enc_cl, dec_cl, c_cl, s_cl), "fp32, NHWC memory format")
    add("bf16", lambda: lambda: pipeline(enc, dec, c, s, bf16), "bf16 autocast, NCHW")
    add("bf16+channels_last", lambda: lambda: pipeline(enc_cl, dec_cl, c_cl, s_cl, bf16),
        "bf16 autocast, NHWC (semstyle's default on CPUs with native bf16)")
    add("jit_freeze", lambda: _jit(enc, dec, c, s, None), "TorchScript freeze + optimize_for_inference (oneDNN)")
    add("jit_freeze+bf16", lambda: _jit(enc, dec, c, s, torch.bfloat16), "the same traced under bf16 autocast")
    add("compile", lambda: _compiled(enc_cl, dec_cl, c_cl, s_cl, False), "torch.compile (inductor), fp32, NHWC")
    add("compile+bf16", lambda: _compiled(enc_cl, dec_cl, c_cl, s_cl, True), "torch.compile (inductor), bf16, NHWC")
    add("int8_dynamic", lambda: _dynamic_int8(enc, dec, c, s), "torch dynamic int8 quantisation (Linear only)")
    add("onnxruntime", lambda: _ort(c, s, size, False), "exported graph, onnxruntime fp32")
    add("onnxruntime_int8", lambda: _ort(c, s, size, True), "onnxruntime static int8 (QDQ, calibrated on 4 images)")
    add("bf16+cl+style@256", lambda: lambda: pipeline(enc_cl, dec_cl, c_cl, s_half.contiguous(memory_format=cl),
                                                        bf16), "bf16 NHWC, style encoded at half size")
    with torch.inference_mode(), bf16():
        cached = enc_cl(s_cl).float()
    add("bf16+cl+cached_style", lambda: lambda: pipeline(enc_cl, dec_cl, c_cl, s_cl, bf16, style_feat=cached),
        "bf16 NHWC, the style's features reused (a warm style cache)")
    add("fast", lambda: _fast(c, s, False), "distilled fast model (--model fast), fp32")
    add("fast+bf16", lambda: _fast(c, s, True), "distilled fast model, bf16 autocast NHWC")
    return out


def _jit(enc: nn.Module, dec: nn.Module, c: torch.Tensor, s: torch.Tensor, dtype: torch.dtype | None) -> Run:
    ctx = bf16 if dtype is not None else contextlib.nullcontext
    with torch.inference_mode(False), torch.no_grad(), ctx(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(enc, c)))
        d = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(dec, enc(c))))
    return lambda: _no_grad_pipeline(e, d, c, s, ctx)


def _no_grad_pipeline(e: Callable, d: Callable, c: torch.Tensor, s: torch.Tensor, ctx: Callable) -> torch.Tensor:
    with torch.no_grad(), ctx():  # TorchScript modules are traced outside inference mode
        cf, sf = e(c), e(s)
        out = d(FN.adain(cf.float(), sf.float()).to(cf.dtype))
    return out.float().clamp(0, 1)


def _compiled(enc: nn.Module, dec: nn.Module, c: torch.Tensor, s: torch.Tensor, use_bf16: bool) -> Run:
    e, d = torch.compile(enc), torch.compile(dec)
    ctx = bf16 if use_bf16 else contextlib.nullcontext
    return lambda: pipeline(e, d, c, s, ctx)


def _dynamic_int8(enc: nn.Module, dec: nn.Module, c: torch.Tensor, s: torch.Tensor) -> Run:
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = quantize_dynamic(enc, {nn.Linear, nn.Conv2d}, dtype=torch.qint8)
        d = quantize_dynamic(dec, {nn.Linear, nn.Conv2d}, dtype=torch.qint8)
    return lambda: pipeline(e, d, c, s)


def _ort(c: torch.Tensor, s: torch.Tensor, size: int, int8: bool) -> Run:
    import onnxruntime as ort

    from semstyle.export.graphs import export_onnx

    tmp = Path(tempfile.mkdtemp(prefix="semstyle-speed-"))
    full, style = tmp / "full.onnx", tmp / "style.onnx"
    export_onnx(full, "full", size=min(size, 256), check=False)
    export_onnx(style, "style", size=min(size, 256), check=False)
    if int8:
        full, style = _quantize(full, "full", tmp), _quantize(style, "style", tmp)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.log_severity_level = 3  # errors only
    sf = ort.InferenceSession(str(full), opts, providers=["CPUExecutionProvider"])
    ss = ort.InferenceSession(str(style), opts, providers=["CPUExecutionProvider"])
    cn, sn = c.numpy(), s.numpy()

    def run() -> torch.Tensor:
        mean, std = ss.run(None, {"style": sn})
        img = sf.run(None, {"content": cn, "style_mean": mean, "style_std": std, "alpha": np.array(1.0, np.float32)})
        return torch.from_numpy(img[0])

    return run


def _quantize(path: Path, part: str, tmp: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from semstyle.assets import content_images, style_images
    from semstyle.export.graphs import example_inputs

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            feeds = []
            base = example_inputs("full", 128)
            for p in [*content_images()[:2], *style_images()[:2]]:
                x = load(p, 128).numpy()
                feeds.append({"style": x} if part == "style" else
                             {"content": x, "style_mean": base["style_mean"].numpy(),
                              "style_std": base["style_std"].numpy(), "alpha": np.array(1.0, np.float32)})
            self.it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    out = tmp / f"{path.stem}.int8.onnx"
    quantize_static(str(path), str(out), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return out


def _fast(c: torch.Tensor, s: torch.Tensor, use_bf16: bool) -> Run:
    from semstyle.models.fast import FastDecoder, FastEncoder

    enc, dec = FastEncoder().eval(), FastDecoder().eval()
    load_into(enc, "pretrained", "fast_encoder")
    load_into(dec, "pretrained", "fast_decoder")
    if use_bf16:
        enc, dec = enc.to(memory_format=torch.channels_last), dec.to(memory_format=torch.channels_last)
        c, s = c.contiguous(memory_format=torch.channels_last), s.contiguous(memory_format=torch.channels_last)
    return lambda: pipeline(enc.encode, dec, c, s, bf16 if use_bf16 else contextlib.nullcontext)


# ---------------------------------------------------------------------- measuring and reporting
def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def measure(variants: dict[str, tuple[Run, str]], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(repeats):
        for name, (run, _) in variants.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{repeats} done", flush=True)
    return times


def render(variants: dict[str, tuple[Run, str]], times: dict[str, list[float]], quality: dict[str, float],
           size: int, repeats: int) -> str:
    base = statistics.median(times["canonical"])
    info = machine_info()
    lines = [f"Median of {repeats} interleaved rounds at {size}² (content and style); "
             + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".", "",
             "| variant | what | median (ms) | × canonical | PSNR vs canonical (dB) |", "|---|---|---:|---:|---:|"]
    for name, (_, note) in variants.items():
        med = statistics.median(times[name])
        q = quality[name]
        lines.append(f"| {name} | {note} | {1000 * med:.0f} | {med / base:.2f}× | "
                     f"{'identical' if q == float('inf') else f'{q:.1f}'} |")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- results:begin (written by benchmarks/bench_speed.py) -->", "<!-- results:end -->"


def write(path: Path, table: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Speed study\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    text = text[: text.index(BEGIN)] + f"{BEGIN}\n{table}{END}" + text[text.index(END) + len(END) :]
    path.write_text(text, encoding="utf-8")


def plot(doc: Path, path: Path) -> None:
    """A bar chart of the ratios in ``doc``'s generated table (so it can be redrawn without re-measuring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = doc.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) : text.index(END)]
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[3].endswith("×"):
            rows.append((cells[0], float(cells[3].rstrip("×")), cells[4]))
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 0.9))
    names = [f"{n}  ({q} dB)" if q not in ("identical",) else f"{n}  (identical)" for n, _, q in rows]
    colors = ["#999999" if n == "canonical" else "#c44e52" if q != "identical" and float(q) < 35 else "#4c72b0"
              for n, _, q in rows]
    ax.barh(names[::-1], [r for _, r, _ in rows][::-1], color=colors[::-1])
    ax.axvline(0.45, color="black", lw=1, ls="--")
    ax.text(0.46, -0.6, "target 0.45×", fontsize=8)
    ax.set_xlabel("time / canonical AdaIN (lower is faster); red: PSNR to canonical < 35 dB")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated variants (canonical always runs)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/speed_study.md")
    ap.add_argument("--plot-only", action="store_true", help="redraw docs/speed_study.png from the doc's table")
    args = ap.parse_args(argv)
    if args.plot_only:
        plot(REPO / "docs" / "speed_study.md", REPO / "docs" / "speed_study.png")
        return 0
    logging.basicConfig(level=logging.ERROR)  # onnxruntime's quantiser logs advice at WARNING
    from semstyle.assets import content_images, style_images

    torch.set_num_threads(args.threads)
    c, s = load(content_images()[0], args.size), load(style_images()[0], args.size)
    variants = build_variants(args.size, c, s, set(args.only.split(",")) if args.only else None)
    ref = variants["canonical"][0]()
    quality = {k: psnr(run().float(), ref) for k, (run, _) in variants.items()}
    torch.set_num_threads(args.threads)
    times = measure(variants, args.repeats)
    table = render(variants, times, quality, args.size, args.repeats)
    print(table)
    if not args.no_write:
        write(REPO / "docs" / "speed_study.md", table)
        plot(REPO / "docs" / "speed_study.md", REPO / "docs" / "speed_study.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

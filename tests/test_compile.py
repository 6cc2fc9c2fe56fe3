"""``compile=True`` (``--compile``): torch.compile'd networks give the eager result."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle import Stylizer

HAS_CXX = any(shutil.which(c) for c in ("c++", "g++", "clang++"))


@pytest.mark.skipif(not HAS_CXX, reason="torch.compile needs a C++ compiler")
def test_compiled_networks_match_eager() -> None:
    rng = np.random.default_rng(0)
    content = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    style = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    kw = dict(size=48, style_size=32, precision="fp32", style_cache=0)
    eager = Stylizer(**kw)
    compiled = Stylizer(compile=True, **kw)
    assert compiled._run_encoder is not compiled.encoder  # really wrapped by torch.compile
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = np.asarray(eager.stylize(content, style).image, dtype=np.int16)
        b = np.asarray(compiled.stylize(content, style).image, dtype=np.int16)
    finally:
        torch.set_num_threads(n)
    assert a.shape == b.shape == (40, 48, 3)
    assert np.abs(a - b).max() <= 2  # fused kernels round differently, by a grey level at most

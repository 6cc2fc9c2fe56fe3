"""``compile=True`` (``--compile``): torch.compile'd networks give the eager result."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle import Stylizer
from semstyle.config import NetworkConfig, StylizeOptions


def _missing_for_inductor() -> str | None:
    """Why torch.compile's CPU backend cannot build kernels here, or None when it can.

    Inductor runs ``$CXX`` or else ``g++`` (not ``c++`` or ``clang++``: see
    torch._inductor.config.cpp.cxx) and compiles its kernels against Python.h.
    """
    cxx = os.environ.get("CXX", "g++")
    if not shutil.which(cxx):
        return (f"torch.compile (inductor) needs the C++ compiler {cxx!r} ($CXX, else g++), which is not on "
                "PATH: run scripts/setup.sh (it installs Debian's g++) or apt-get install g++")
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        return (f"torch.compile (inductor) compiles against Python's headers, and {header} is missing: "
                "install this Python's -dev package (scripts/setup.sh does for Debian's Python)")
    return None


MISSING = _missing_for_inductor()


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_compiled_networks_match_eager() -> None:
    rng = np.random.default_rng(0)
    # content and style of one shape: the encoder is compiled for one input shape, not two (kernels take a minute
    # to build on a slow CPU)
    content = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    style = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    net, opts = NetworkConfig(precision="fp32", style_cache=0), StylizeOptions(size=48, style_size=48)
    eager = Stylizer(net, defaults=opts)
    compiled = Stylizer(net.updated(compile=True), defaults=opts)
    assert compiled.networks._run_encoder is not compiled.encoder  # really wrapped by torch.compile
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = np.asarray(eager.stylize(content, style).image, dtype=np.int16)
        b = np.asarray(compiled.stylize(content, style).image, dtype=np.int16)
    finally:
        torch.set_num_threads(n)
    assert a.shape == b.shape == (40, 48, 3)
    assert np.abs(a - b).max() <= 2  # fused kernels round differently, by a grey level at most

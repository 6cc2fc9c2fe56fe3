"""The pipeline's request/options/result contract: one options object per call, checked once; the
record types; progress events and timings."""

from __future__ import annotations

import time

import numpy as np
import pytest

from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.errors import InputError
from semstyle.types import ProgressEvent, Timings, as_request


def test_config_weights_of_the_wrong_length_are_an_error(images) -> None:
    from semstyle import Stylizer

    st = Stylizer(
        NetworkConfig(device="cpu"), defaults=StylizeOptions(size=64, style_size=64, style_weights=(1.0, 2.0, 3.0))
    )
    with pytest.raises(InputError, match="got 3 style weights for 2 styles; give one weight per style"):
        st.stylize(images.content, [images.style_a, images.style_b])  # was silently dropped before


def test_per_call_options_are_one_checked_object(stylizer, images) -> None:
    opts = stylizer.options(overrides={"alpha": 0.5, "semantic": "auto", "preserve_color": None})
    assert opts.alpha == 0.5 and opts.semantic == "auto" and opts.preserve_color is stylizer.defaults.preserve_color
    assert stylizer.defaults.alpha == 1.0  # the Stylizer's own defaults are untouched
    with pytest.raises(InputError, match=r"^alpha must be in \[0, 1\.25\], got 1.3$"):
        stylizer.options(overrides={"alpha": 1.3})
    with pytest.raises(InputError, match=r"^alpha must be in \[0, 1\.25\], got 1.3$"):
        stylizer.stylize(images.content, images.style_a, alpha=1.3)
    # a misspelt option is an error that names it, as a keyword and as a record field
    with pytest.raises(TypeError, match="alhpa"):
        stylizer.stylize(images.content, images.style_a, alhpa=0.5)  # type: ignore[call-arg]
    with pytest.raises(InputError, match="unknown option 'alhpa'"):
        stylizer.options(overrides={"alhpa": 0.5})
    # the networks are the Stylizer's, not a call's
    with pytest.raises(TypeError, match="model"):
        stylizer.stylize(images.content, images.style_a, model="fast")  # type: ignore[call-arg]


def test_stylize_takes_every_option_by_name_and_a_record() -> None:
    import inspect

    from semstyle.config import OPTION_FIELDS
    from semstyle.pipelines.stylize import Stylizer

    params = inspect.signature(Stylizer.stylize).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())  # no **kwargs
    assert set(OPTION_FIELDS) <= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert "options" in params


def test_the_two_records_check_their_own_rules() -> None:
    from semstyle.config import StylizeConfig

    with pytest.raises(ValueError, match="refinement needs the VGG19 model"):
        StylizeConfig(NetworkConfig(model="fast"), StylizeOptions(refine=2))
    with pytest.raises(ValueError, match="precision must be one of"):
        NetworkConfig(precision="half")  # type: ignore[arg-type]
    cfg = StylizeConfig.from_values({"alpha": 0.5, "device": "cpu", "output": "x.png", "size": None})
    assert cfg.options.alpha == 0.5 and cfg.networks.device == "cpu" and cfg.options.size == 512
    with pytest.raises(ValueError, match="unknown setting 'alhpa'"):
        cfg.updated(alhpa=1)


def test_result_carries_the_resized_images_and_progress_reaches_the_callback(stylizer, images) -> None:
    events: list[ProgressEvent] = []
    res = stylizer.stylize(images.content_wide, [images.style_a, images.style_b], callback=events.append)
    assert res.content is not None and res.content.size == res.image.size
    assert [im.size for im in res.styles] == [(128, 128), (128, 128)]
    assert [(e.stage, e.step, e.total) for e in events] == [("encode", 1, 1), ("decode", 1, 1)]
    assert {"load+style", "segment", "decode", "color"} <= set(res.timings)


def test_as_request_normalises_single_and_list_arguments() -> None:
    r = as_request("c.png", "s.png", style_labels="s_lab.png", style_weights=[1, 2])
    assert r.styles == ("s.png",) and r.style_labels == ("s_lab.png",) and r.style_weights == (1.0, 2.0)
    r = as_request("c.png", ["a.png", "b.png"], region_styles={1: 0})
    assert r.styles == ("a.png", "b.png") and r.style_labels is None and r.region_styles == {1: 0}


def test_timings_add_up_per_step() -> None:
    t = Timings()
    with t("a"):
        time.sleep(0.01)
    with t("a"):
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="boom"), t("b"):
        raise RuntimeError("boom")
    assert t["a"] >= 0.02 and "b" in t and np.isfinite(t["b"])

"""Write docs/fusion_grid.png: the fusion variants side by side on the bundled public-domain images.

Columns: content, style, global AdaIN, region AdaIN (automatic regions, the default ``--fusion adain``),
attention fusion (``--fusion attention``), region AdaIN with two rounds of region-guided refinement
(``--refine 2``), and the automatic regions of both images.

    .venv/bin/python scripts/fusion_grid.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from semstyle import Stylizer, assets
from semstyle.config import StylizeOptions
from semstyle.io.images import save_image
from semstyle.viz import grid, overlay

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (("astronaut", "starry_night"), ("coffee", "wave"), ("chelsea", "the_scream"))


def main() -> None:
    st = Stylizer(defaults=StylizeOptions(size=256, style_size=256))
    contents = {p.stem: p for p in assets.content_images()}
    styles = {p.stem: p for p in assets.style_images()}
    rows = []
    for c, s in PAIRS:
        plain = st.stylize(contents[c], styles[s])
        region = st.stylize(contents[c], styles[s], semantic="auto")
        attention = st.stylize(contents[c], styles[s], semantic="auto", fusion="attention")
        refined = st.stylize(contents[c], styles[s], semantic="auto", refine=2, refine_target=1.0)
        assert region.content_labels is not None
        rows.append([plain.content, plain.styles[0], plain.image, region.image, attention.image, refined.image,
                     overlay(region.content, region.content_labels), overlay(region.styles[0], region.style_labels[0])])
    titles = ["content", "style", "global AdaIN", "region AdaIN (auto)", "attention (auto)",
              "region + refine 2", "content regions", "style regions"]
    sheet = grid(rows, cell=150, titles=titles).quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    print(save_image(sheet, ROOT / "docs" / "fusion_grid.png", overwrite=True))


if __name__ == "__main__":
    main()

"""Write docs/semantic_example.png: plain AdaIN next to semantic (automatic) transfer, bundled images.

    .venv/bin/python scripts/semantic_example.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from semstyle import Stylizer, assets
from semstyle.config import StylizeOptions
from semstyle.io.images import load_image, resize_longest, save_image
from semstyle.viz import grid, overlay

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    st = Stylizer(defaults=StylizeOptions(size=384, style_size=384))  # the defaults of --semantic auto
    contents = {p.stem: p for p in assets.content_images()}
    styles = {p.stem: p for p in assets.style_images()}
    rows = []
    for c, s in (("astronaut", "starry_night"), ("coffee", "wave")):
        plain = st.stylize(contents[c], styles[s]).image
        sem = st.stylize(contents[c], styles[s], semantic="auto")
        c_img = resize_longest(load_image(contents[c]), 384)
        s_img = st.encode_style(styles[s]).image
        rows.append([c_img, s_img, plain, sem.image, overlay(c_img, sem.content_labels),
                     overlay(s_img, sem.style_labels[0])])
    titles = ["content", "style", "plain AdaIN", "semantic (auto)", "content regions", "style regions"]
    sheet = grid(rows, cell=170, titles=titles).quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    print(save_image(sheet, ROOT / "docs" / "semantic_example.png", overwrite=True))


if __name__ == "__main__":
    main()

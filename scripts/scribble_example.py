"""Write docs/scribble_example.png: the same photo and painting with the strokes painted two ways, bundled images.

Each row: the content with its strokes, the style with its strokes, the regions grown from them on both, and the
result. In the first row the table is painted like the painting's sky and the cup like its cypress and village;
the second row swaps the style's two colours, and the result follows.

    .venv/bin/python scripts/scribble_example.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from semstyle import Stylizer, assets
from semstyle.config import StylizeOptions
from semstyle.io.images import load_image, resize_longest, save_image
from semstyle.viz import grid, overlay

ROOT = Path(__file__).resolve().parents[1]
SIZE = 384
RED, GREEN = (230, 25, 75), (60, 180, 75)  # the web page's first two palette colours
Stroke = tuple[tuple[int, int, int], list[tuple[float, float]]]  # colour, points as shares of width and height
TABLE = [[(0.75, 0.12), (0.95, 0.4)], [(0.03, 0.5), (0.08, 0.9)]]
CUP = [[(0.38, 0.3), (0.55, 0.3)], [(0.3, 0.75), (0.5, 0.85)]]
SKY = [[(0.4, 0.15), (0.8, 0.25)]]
GROUND = [[(0.2, 0.5), (0.22, 0.85)], [(0.6, 0.88), (0.85, 0.9)]]  # the cypress and the village


def paint(size: tuple[int, int], strokes: list[Stroke], width: int = 9) -> Image.Image:
    """Strokes on a transparent picture, as a person paints them on the web page."""
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    for color, pts in strokes:
        draw.line([(x * size[0], y * size[1]) for x, y in pts], fill=(*color, 255), width=width, joint="curve")
    return im


def shown(img: Image.Image, strokes: Image.Image) -> Image.Image:
    return Image.alpha_composite(img.convert("RGBA"), strokes).convert("RGB")


def main() -> None:
    st = Stylizer(defaults=StylizeOptions(size=SIZE, style_size=SIZE))
    content = resize_longest(load_image(next(p for p in assets.content_images() if p.stem == "coffee")), SIZE)
    style = resize_longest(load_image(next(p for p in assets.style_images() if p.stem == "starry_night")), SIZE)
    c_strokes = paint(content.size, [(RED, p) for p in TABLE] + [(GREEN, p) for p in CUP])
    rows = []
    for sky, ground in ((RED, GREEN), (GREEN, RED)):
        s_strokes = paint(style.size, [(sky, p) for p in SKY] + [(ground, p) for p in GROUND])
        res = st.stylize(content, style, semantic="scribbles", content_scribbles=c_strokes,
                         style_scribbles=s_strokes)
        rows.append([shown(content, c_strokes), shown(style, s_strokes), overlay(content, res.content_labels, True),
                     overlay(style, res.style_labels[0], True), res.image])
    titles = ["content + strokes", "style + strokes", "grown: content", "grown: style", "result"]
    sheet = grid(rows, cell=200, titles=titles).quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    print(save_image(sheet, ROOT / "docs" / "scribble_example.png", overwrite=True))


if __name__ == "__main__":
    main()

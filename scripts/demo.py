"""Demo: stylise every bundled content photo with every bundled style and write a contact sheet.

    python scripts/demo.py                 # -> outputs/demo_contact_sheet.png
    python scripts/demo.py --docs          # also refresh docs/demo_contact_sheet.png (smaller cells)
    python scripts/demo.py --size 96 --out /tmp/demo   # a quick run

Rows are the content photos, columns the styles; the originals sit on the top row and the
left column. Everything goes through the public Python API (``semstyle.Stylizer``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from semstyle import Stylizer
from semstyle.assets import content_images, style_images
from semstyle.config import StylizeOptions
from semstyle.io.images import load_image, save_image
from semstyle.viz import contact_sheet

REPO = Path(__file__).resolve().parents[1]
SHEET_NAME = "demo_contact_sheet.png"
DOCS_CELL = 160


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=384, help="longest side of content and style images (default 384)")
    p.add_argument("--cell", type=int, default=192, help="size of one contact-sheet cell in pixels (default 192)")
    p.add_argument("--alpha", type=float, default=1.0,
                   help="content/style trade-off in [0, 1.25] (default 1; past 1 extrapolated)")
    p.add_argument("--out", type=Path, default=REPO / "outputs", help="output folder (default: outputs/ in the repo)")
    p.add_argument("--docs", action="store_true", help=f"also write docs/{SHEET_NAME} with {DOCS_CELL}px cells")
    return p.parse_args(argv)


def run(size: int, alpha: float) -> tuple[list[Image.Image], list[Image.Image], list[list[Image.Image]]]:
    """Stylise every content with every style; returns (contents, styles, results[content][style])."""
    contents = [load_image(p) for p in content_images()]
    styles = [load_image(p) for p in style_images()]
    st = Stylizer(defaults=StylizeOptions(size=size, style_size=size))
    results = [[st.stylize(c, s, alpha=alpha).image for s in styles] for c in contents]
    return contents, styles, results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    contents, styles, results = run(args.size, args.alpha)
    sheet = contact_sheet(contents, styles, results, cell=args.cell)
    out = save_image(sheet, args.out / SHEET_NAME, overwrite=True)  # atomic: temp file, then rename
    print(f"contact sheet ({len(contents)} contents x {len(styles)} styles): {out}")
    if args.docs:
        # a 256-colour palette keeps the committed picture small (about a third of the RGB PNG)
        small = contact_sheet(contents, styles, results, cell=DOCS_CELL)
        small = small.quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
        print(f"docs copy: {save_image(small, REPO / 'docs' / SHEET_NAME, overwrite=True)}")
    print(f"total time: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

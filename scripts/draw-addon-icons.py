"""Draws the add-on's store art: addon/icon.png (128x128) and addon/logo.png (250x100).

Plain geometry, no fonts or third-party art: a face (head, eyes, smile) seen through a door frame, with a
lock's keyhole beside it in the logo. Drawn at 4x and downsampled, so edges are smooth. Deterministic: the
same Pillow gives the same bytes.

    /var/cache/facegate/pyref/bin/python scripts/draw-addon-icons.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

SCALE = 4
BLUE = (3, 169, 244, 255)  # Home Assistant's primary blue
DARK = (16, 46, 72, 255)
WHITE = (255, 255, 255, 255)
GREEN = (76, 175, 80, 255)


def face_mark(d: ImageDraw.ImageDraw, x: float, y: float, s: float) -> None:
    """A door frame with a face in it; (x, y) is the top-left of a square of side s (unscaled units)."""
    k = SCALE
    # Door frame: a rounded rectangle outline, open at the bottom like a doorway.
    w = s * 0.07
    d.rounded_rectangle(
        [(x + s * 0.16) * k, (y + s * 0.10) * k, (x + s * 0.84) * k, (y + s * 0.96) * k],
        radius=s * 0.10 * k,
        outline=WHITE,
        width=round(w * k),
    )
    # Head.
    cx, cy, r = x + s * 0.5, y + s * 0.50, s * 0.22
    d.ellipse([(cx - r) * k, (cy - r * 1.12) * k, (cx + r) * k, (cy + r * 1.12) * k], fill=WHITE)
    # Eyes.
    er = s * 0.032
    for ex in (cx - r * 0.42, cx + r * 0.42):
        ey = cy - r * 0.18
        d.ellipse([(ex - er) * k, (ey - er) * k, (ex + er) * k, (ey + er) * k], fill=DARK)
    # Smile: the lower part of an ellipse.
    sw = r * 0.55
    d.arc(
        [(cx - sw) * k, (cy - r * 0.2) * k, (cx + sw) * k, (cy + r * 0.55) * k],
        start=25,
        end=155,
        fill=DARK,
        width=round(s * 0.03 * k),
    )
    # Recognised: a green tick badge at the lower right of the door.
    bx, by, br = x + s * 0.78, y + s * 0.80, s * 0.14
    d.ellipse([(bx - br) * k, (by - br) * k, (bx + br) * k, (by + br) * k], fill=GREEN, outline=WHITE,
              width=round(s * 0.025 * k))
    d.line(
        [((bx - br * 0.45) * k, by * k), ((bx - br * 0.1) * k, (by + br * 0.38) * k),
         ((bx + br * 0.5) * k, (by - br * 0.35) * k)],
        fill=WHITE,
        width=round(s * 0.035 * k),
        joint="curve",
    )


def keyhole(d: ImageDraw.ImageDraw, cx: float, cy: float, s: float) -> None:
    k = SCALE
    r = s * 0.16
    d.ellipse([(cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k], fill=WHITE)
    d.polygon(
        [((cx - r * 0.55) * k, (cy + r * 0.3) * k), ((cx + r * 0.55) * k, (cy + r * 0.3) * k),
         ((cx + r * 0.9) * k, (cy + r * 2.6) * k), ((cx - r * 0.9) * k, (cy + r * 2.6) * k)],
        fill=WHITE,
    )


def canvas(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGBA", (w * SCALE, h * SCALE), (0, 0, 0, 0))
    return img, ImageDraw.Draw(img)


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "addon"
    img, d = canvas(128, 128)
    d.rounded_rectangle([0, 0, 128 * SCALE - 1, 128 * SCALE - 1], radius=24 * SCALE, fill=BLUE)
    face_mark(d, 4, 4, 120)
    img.resize((128, 128), Image.LANCZOS).save(out / "icon.png", optimize=True)

    img, d = canvas(250, 100)
    d.rounded_rectangle([0, 0, 250 * SCALE - 1, 100 * SCALE - 1], radius=18 * SCALE, fill=DARK)
    face_mark(d, 12, 4, 92)
    # A lift's call buttons and a lock: what the face opens.
    for i, up in enumerate((True, False)):
        cx, cy, r = 142, 34 + i * 32, 11
        d.ellipse([(cx - r) * SCALE, (cy - r) * SCALE, (cx + r) * SCALE, (cy + r) * SCALE], outline=WHITE,
                  width=3 * SCALE)
        t = 5 if up else -5
        d.polygon([((cx - 5) * SCALE, (cy + t * 0.6) * SCALE), ((cx + 5) * SCALE, (cy + t * 0.6) * SCALE),
                   (cx * SCALE, (cy - t) * SCALE)], fill=WHITE)
    d.rounded_rectangle([178 * SCALE, 22 * SCALE, 232 * SCALE, 80 * SCALE], radius=8 * SCALE, fill=BLUE)
    keyhole(d, 205, 42, 60)
    img.resize((250, 100), Image.LANCZOS).save(out / "logo.png", optimize=True)


if __name__ == "__main__":
    main()

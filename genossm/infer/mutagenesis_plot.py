"""The saturation-mutagenesis figure: a logo track over a heat map, wrapped into rows.

One figure per region, written as PNG, SVG or PDF (the format follows each path's suffix). Each
row holds `wrap` bases (the last row may be shorter, drawn at the same scale) and is two tracks:
    logo      the reference base at each position, its letter height the mean loss of
              log-likelihood when it is mutated: mean over the 3 alternatives of max(-LLR, 0)
              (nats), as attribution logos scale the reference letter by its importance; a
              substitution the model likes better than the reference lowers nothing. One y scale
              for all rows, so rows compare.
    heat map  alternative base (A, C, G, T) x position, LLR = log P(alt) - log P(ref) in nats,
              diverging colours centred at 0 (blue: the model prefers the reference), grey where
              the row is the reference base (or the base is N); the reference bases are printed
              under it when a letter fits (>= MIN_LETTER_POINTS wide), and genomic coordinates
              (1-based) tick the axis.
A single colour bar with its units serves every row. Letters are outlines (TextPath), so SVG and
PDF need no fonts to show them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from genossm.atomic import atomic_path
from genossm.errors import UsageError
from genossm.tokenizer import BASES, NUM_BASES

FORMATS = ("png", "svg", "pdf")
DEFAULT_WRAP = 100
MAX_AUTO_ROWS = 10  # beyond 1,000 bases the automatic wrap widens rows instead of adding rows
BASE_COLOURS = {"A": "#109648", "C": "#255c99", "G": "#f7b32b", "T": "#d62839"}  # logo convention
MIN_LETTER_POINTS = 5.0  # narrower than this, a printed base is unreadable: tick positions instead
MIN_GLYPH_POINTS = 1.5  # narrower than this, a logo letter is a smear: draw a coloured bar instead
PNG_DPI = 150

# Figure geometry in inches: rows of a fixed height, a data width chosen from the bases per row.
ROW_WIDTH_PER_BASE = 0.17
MIN_DATA_WIDTH, MAX_DATA_WIDTH = 4.5, 13.0
LOGO_HEIGHT, HEATMAP_HEIGHT, LOGO_GAP = 0.6, 0.72, 0.06
LEFT, RIGHT = 0.75, 1.25  # y labels; colour bar and its label
TITLE_HEIGHT = 0.45


def check_formats(formats) -> tuple[str, ...]:
    """Normalise ['png', 'svg,pdf'] to ('png', 'svg', 'pdf'); unknown formats are a UsageError."""
    names = []
    for item in formats:
        for name in str(item).split(","):
            name = name.strip().lower().lstrip(".")
            if not name:
                continue
            if name not in FORMATS:
                raise UsageError(f"--format must be one of {', '.join(FORMATS)} (comma-separated or repeated), "
                                 f"got {name!r}")
            if name not in names:
                names.append(name)
    if not names:
        raise UsageError(f"--format needs at least one of {', '.join(FORMATS)}")
    return tuple(names)


def figure_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UsageError(f"cannot tell the figure format of {os.fspath(path)!r}: its name must end in "
                         f"{', '.join('.' + f for f in FORMATS)}")
    return suffix


def auto_wrap(length: int) -> int:
    """Bases per row when none is asked for: 100, widened (in hundreds) past 1,000 bases so that a
    region is at most MAX_AUTO_ROWS rows."""
    if length <= DEFAULT_WRAP * MAX_AUTO_ROWS:
        return DEFAULT_WRAP
    return math.ceil(length / MAX_AUTO_ROWS / 100) * 100


def resolve_wrap(length: int, wrap: int | None) -> int:
    """None: auto_wrap; 0: one row; else `wrap` bases per row (never more than the region)."""
    if wrap is None:
        wrap = auto_wrap(length)
    if wrap < 0:
        raise UsageError(f"--wrap must be 0 (one row) or a number of bases per row, got {wrap}")
    return min(wrap or length, length)


def row_count(length: int, wrap: int | None = None) -> int:
    return math.ceil(length / resolve_wrap(length, wrap))


def logo_heights(llr: np.ndarray) -> np.ndarray:
    """(4, L) LLRs -> (L,) mean over the alternatives of max(-LLR, 0); 0 where there are none."""
    loss = np.clip(-llr, 0.0, None)  # NaN (reference cells, N) stays NaN
    counts = np.sum(np.isfinite(loss), axis=0)
    totals = np.nansum(loss, axis=0)
    return np.divide(totals, counts, out=np.zeros(llr.shape[1]), where=counts > 0)


def nice_step(span: int, target_ticks: int) -> int:
    """A 1-2-5 step giving about `target_ticks` ticks over `span` bases."""
    raw = max(span / max(target_ticks, 1), 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)


def draw_letter(axis, letter: str, x: float, height: float, font) -> None:
    """`letter` filling [x - 0.45, x + 0.45] x [0, height] in data coordinates."""
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath((0, 0), letter, size=1, prop=font)
    extents = path.get_extents()
    transform = (Affine2D().translate(-extents.x0, -extents.y0)
                 .scale(0.9 / extents.width, height / extents.height).translate(x - 0.45, 0))
    axis.add_patch(PathPatch(transform.transform_path(path), facecolor=BASE_COLOURS[letter],
                             edgecolor="none", linewidth=0))


def draw_logo(axis, positions: np.ndarray, letters: str, heights: np.ndarray, base_points: float) -> None:
    """Letters when they are at least MIN_GLYPH_POINTS wide, coloured bars otherwise."""
    from matplotlib.font_manager import FontProperties

    drawn = [(x, b, h) for x, b, h in zip(positions, letters, heights) if b in BASE_COLOURS and h > 0]
    if base_points >= MIN_GLYPH_POINTS:
        font = FontProperties(family="DejaVu Sans", weight="bold")
        for x, letter, height in drawn:
            draw_letter(axis, letter, x, height, font)
    elif drawn:
        xs, bases, hs = zip(*drawn)
        axis.bar(xs, hs, width=1.0, color=[BASE_COLOURS[b] for b in bases], linewidth=0)


def write_figure(result, paths, title: str = "", wrap: int | None = None) -> list[str]:
    """Draw `result` (a MutagenesisResult) once and save it to each of `paths` (format by suffix);
    returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [os.fspath(p) for p in paths]
    formats = [figure_format(p) for p in paths]
    figure = build_figure(result, title=title, wrap=wrap)
    try:
        for path, fmt in zip(paths, formats):
            with atomic_path(path) as tmp:
                figure.savefig(tmp, format=fmt, dpi=PNG_DPI)
    finally:
        plt.close(figure)
    return paths


def build_figure(result, title: str = "", wrap: int | None = None):
    """The matplotlib Figure of `result`: see the module docstring."""
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    region, llr, reference = result.region, result.llr, result.reference
    length = region.length
    wrap = resolve_wrap(length, wrap)
    rows = math.ceil(length / wrap)
    finite = llr[np.isfinite(llr)]
    limit = float(np.max(np.abs(finite))) if finite.size else 1.0
    limit = limit or 1.0
    heights = logo_heights(llr)
    logo_top = float(heights.max()) * 1.05 or 1.0
    logo_tick = float(f"{logo_top / 1.05:.1g}")  # one round value on the logo axis

    data_width = min(max(wrap * ROW_WIDTH_PER_BASE, MIN_DATA_WIDTH), MAX_DATA_WIDTH)
    base_points = data_width * 72 / wrap
    show_bases = base_points >= MIN_LETTER_POINTS
    axis_labels = 0.42 if show_bases else 0.28  # printed bases, then coordinates, under each heat map
    row_height = LOGO_HEIGHT + LOGO_GAP + HEATMAP_HEIGHT + axis_labels + 0.12
    width = LEFT + data_width + RIGHT
    height = TITLE_HEIGHT + rows * row_height + 0.1

    figure = plt.figure(figsize=(width, height))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    base_font = min(9.0, base_points * 0.85)
    step = nice_step(wrap, target_ticks=max(int(data_width / 1.1), 2))
    image = None
    for row in range(rows):
        first, last = row * wrap, min((row + 1) * wrap, length)  # 0-based, into the region
        top = height - TITLE_HEIGHT - row * row_height  # inches from the bottom
        logo_axis = figure.add_axes((LEFT / width, (top - LOGO_HEIGHT) / height,
                                     data_width / width, LOGO_HEIGHT / height))
        heat_axis = figure.add_axes((LEFT / width, (top - LOGO_HEIGHT - LOGO_GAP - HEATMAP_HEIGHT) / height,
                                     data_width / width, HEATMAP_HEIGHT / height), sharex=logo_axis)
        x0 = region.start + first + 1  # the 1-based coordinate of the row's first base
        xlim = (x0 - 0.5, x0 + wrap - 0.5)  # a short last row keeps the scale of the others
        positions = np.arange(x0, x0 + last - first)

        draw_logo(logo_axis, positions, reference[first:last], heights[first:last], base_points)
        logo_axis.set_xlim(*xlim)
        logo_axis.set_ylim(0, logo_top)
        logo_axis.tick_params(axis="x", bottom=False, labelbottom=False)
        logo_axis.set_yticks([logo_tick], [f"{logo_tick:g}"], fontsize=7)  # no 0 label to crowd the A row
        logo_axis.set_ylabel("loss\n(nats)", fontsize=7)
        for side in ("top", "right"):
            logo_axis.spines[side].set_visible(False)

        image = heat_axis.imshow(np.ma.masked_invalid(llr[:, first:last]), aspect="auto", cmap=cmap,
                                 norm=norm, interpolation="nearest",
                                 extent=(x0 - 0.5, x0 + last - first - 0.5, NUM_BASES - 0.5, -0.5))
        heat_axis.set_xlim(*xlim)
        heat_axis.set_yticks(range(NUM_BASES), list(BASES), fontsize=7)
        heat_axis.set_ylabel("alt", fontsize=7)
        ticks = [x for x in range(math.ceil(x0 / step) * step, x0 + wrap, step) if x < x0 + last - first]
        heat_axis.set_xticks(ticks, [f"{x:,}" for x in ticks], fontsize=7)
        if show_bases:
            for x, base in zip(positions, reference[first:last]):
                heat_axis.text(x, -0.03, base, transform=heat_axis.get_xaxis_transform(), ha="center",
                               va="top", fontsize=base_font, family="monospace",
                               color=BASE_COLOURS.get(base, "black"), fontweight="bold")
            heat_axis.tick_params(axis="x", length=0, pad=base_font + 5)  # a tick mark would cross a base
        else:
            heat_axis.tick_params(axis="x", length=3, pad=2)
    heat_axis.set_xlabel(f"{region.contig} position (1-based)", fontsize=7, loc="left")

    bar_height = min(2.2, (rows - 1) * row_height + HEATMAP_HEIGHT)  # from the first heat map's top
    bar_axis = figure.add_axes(((LEFT + data_width + 0.15) / width,
                                (height - TITLE_HEIGHT - LOGO_HEIGHT - LOGO_GAP - bar_height) / height,
                                0.14 / width, bar_height / height))
    colorbar = figure.colorbar(image, cax=bar_axis)
    colorbar.set_label("LLR, log P(alt) - log P(ref)\n(nats; grey: reference base)", fontsize=7)
    colorbar.ax.tick_params(labelsize=7)
    figure.text(LEFT / width, (height - 0.12) / height,
                title or f"genossm saturation mutagenesis {region}", fontsize=9, va="top")
    return figure

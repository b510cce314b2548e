"""The mutagenesis figure: formats by suffix, rows per wrap width, logo heights from a hand-set matrix."""

from __future__ import annotations

import numpy as np
import pytest

from genossm.errors import UsageError
from genossm.infer.mutagenesis import MutagenesisResult
from genossm.infer.mutagenesis_plot import (build_figure, check_formats, logo_heights, resolve_wrap, row_count,
                                            write_figure)
from genossm.io.intervals import Region

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


def hand_set_result():
    """ACGN: A's alternatives cost 1, 2 and 3 nats; C has one gain (+1) and two losses (0.5, 1.5);
    G only gains; N has no alternatives."""
    nan = np.nan
    llr = np.array([[nan, -0.5, 0.2, nan],   # alt A
                    [-1.0, nan, 0.4, nan],   # alt C
                    [-2.0, 1.0, nan, nan],   # alt G
                    [-3.0, -1.5, 0.6, nan]])  # alt T
    return MutagenesisResult(Region("chr1", 99, 103), "ACGN", llr)


def random_result(length, seed=0):
    rng = np.random.default_rng(seed)
    reference = "".join(rng.choice(list("ACGT"), length))
    llr = rng.normal(0, 1, (4, length))
    llr[["ACGT".index(b) for b in reference], np.arange(length)] = np.nan
    return MutagenesisResult(Region("chr2", 5_000, 5_000 + length), reference, llr)


def test_logo_heights_are_the_mean_loss_over_the_alternatives():
    np.testing.assert_allclose(logo_heights(hand_set_result().llr), [2.0, (0.5 + 0 + 1.5) / 3, 0.0, 0.0])


@pytest.mark.parametrize("length,wrap,rows", [(30, None, 1), (100, None, 1), (101, None, 2), (200, None, 2),
                                              (1000, None, 10), (2000, None, 10), (2001, None, 7),
                                              (10_000, None, 10), (250, 60, 5), (7, 3, 3), (1, 100, 1),
                                              (2000, 0, 1), (50, 500, 1)])
def test_row_count(length, wrap, rows):
    assert row_count(length, wrap) == rows


def test_auto_wrap_widens_in_hundreds_past_1000_bases():
    assert resolve_wrap(200, None) == 100 and resolve_wrap(2000, None) == 200 and resolve_wrap(1001, None) == 200
    with pytest.raises(UsageError, match="--wrap"):
        resolve_wrap(10, -1)


def test_figure_has_a_logo_and_a_heat_map_per_row_and_one_colour_bar():
    figure = build_figure(random_result(250), wrap=60)
    assert len(figure.axes) == 2 * 5 + 1
    import matplotlib.pyplot as plt
    plt.close(figure)


def test_logo_letters_are_as_tall_as_their_heights():
    from matplotlib.patches import PathPatch

    result = hand_set_result()
    figure = build_figure(result, wrap=0)
    logo = figure.axes[0]
    patches = [p for p in logo.patches if isinstance(p, PathPatch)]
    assert len(patches) == 2  # G and N have no loss: no letter
    tops = sorted(p.get_path().get_extents().y1 for p in patches)
    np.testing.assert_allclose(tops, sorted(logo_heights(result.llr)[:2]), rtol=1e-6)
    import matplotlib.pyplot as plt
    plt.close(figure)


@pytest.mark.parametrize("length", [30, 200, 2000])
def test_each_format_by_suffix(tmp_path, length):
    paths = [tmp_path / f"m{length}.{fmt}" for fmt in ("png", "svg", "pdf")]
    assert write_figure(random_result(length), paths) == [str(p) for p in paths]
    for path in paths:
        assert path.read_bytes().startswith(MAGIC[path.suffix[1:]])


def test_formats_and_suffixes_are_checked():
    assert check_formats(["png", "svg,PDF", ".png"]) == ("png", "svg", "pdf")
    with pytest.raises(UsageError, match="--format must be one of png, svg, pdf"):
        check_formats(["jpg"])
    with pytest.raises(UsageError, match="figure format"):
        write_figure(random_result(5), ["out.tiff"])

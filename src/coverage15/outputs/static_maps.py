"""Static PNG coverage maps for reports (matplotlib).

They show what the interactive map shows when it opens (see :func:`~.maps.map_data`):
街镇 coloured by coverage share, uncovered 街镇 outlined and named, district boundaries, the
first facility layer's service-area union, the facilities, a legend with the targets, a title
naming the config, walking speed and minutes, a scale bar and the OpenStreetMap attribution.
No basemap tiles: the PNGs are made offline.

Chinese text needs a CJK font (Debian: ``fonts-noto-cjk``). Without one the maps are still
written, with a warning, and Chinese characters show as boxes.
"""

from __future__ import annotations

import logging
import math
import re
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import matplotlib as mpl
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from coverage15.outputs.maps import (
    FLAG_COLOUR,
    NO_DATA_COLOUR,
    OSM_ATTRIBUTION,
    SHARE_BINS,
    SHARE_COLOURS,
    MapData,
    config_file,
    facility_count_text,
    layer_colours,
    map_data,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from coverage15.result import Result

__all__ = ["cjk_font", "place_labels", "png_districts", "render_png", "write_pngs"]

log = logging.getLogger(__name__)

CJK_FAMILIES = (
    "Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "SimHei", "Noto Sans CJK JP",
    "Noto Serif CJK SC",
)
_CJK_FILES = re.compile(r"cjk|wqy|wenquanyi|sourcehan|simhei|msyh|pingfang", re.IGNORECASE)
_font_checked = False
_font: str | None = None


def cjk_font() -> str | None:
    """A font family that has Chinese glyphs, or None (with a warning) if none is installed.

    Looks at matplotlib's font list first, then at the system's font files (matplotlib's
    font cache may predate a font installed later).
    """
    global _font_checked, _font  # noqa: PLW0603
    if _font_checked:
        return _font
    _font_checked = True

    def pick() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((family for family in CJK_FAMILIES if family in names), None)

    _font = pick()
    if _font is None:
        for path in font_manager.findSystemFonts():
            if _CJK_FILES.search(Path(path).name):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    log.debug("cannot read font %s", path)
        _font = pick()
    if _font is None:
        log.warning("no CJK font found (install fonts-noto-cjk): Chinese text in the PNG "
                    "maps will show as boxes")
    return _font


def png_districts(result: Result) -> list[str]:
    """Districts that get their own PNG: those with any 街镇 inside the walk network.

    A district whose 街镇 all lie outside the network has nothing assessed to show.
    """
    report = result.gap_report
    inside = report.loc[report["network"] != "none", "district"].dropna()
    return sorted(set(inside))


def _scale_bar(ax: Axes, west: float, south: float, east: float, north: float) -> None:
    lat = math.radians((south + north) / 2)
    km_per_deg = 111.32 * math.cos(lat)
    width_km = (east - west) * km_per_deg
    target = width_km / 5
    length = max(v for v in (0.2, 0.5, 1, 2, 5, 10, 20) if v <= max(target, 0.2))
    x0 = west + (east - west) * 0.04
    y0 = south + (north - south) * 0.035
    x1 = x0 + length / km_per_deg
    ax.plot([x0, x1], [y0, y0], color="black", lw=3, solid_capstyle="butt", zorder=20)
    ax.text((x0 + x1) / 2, y0 + (north - south) * 0.012, f"{length:g} km", ha="center",
            va="bottom", fontsize=8, zorder=20)


Label = tuple[float, float, str, dict[str, Any]]


def place_labels(fig: Figure, ax: Axes, labels: list[Label]) -> list[Any]:
    """Draw ``labels`` (x, y, text, style) in order, none over another.

    A label that would overlap one already drawn is moved up or down by its height (up to
    twice); one that still collides is left out (its 街镇 keeps its outline, and the legend
    counts it). Returns the text artists drawn.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    ax.apply_aspect()
    kept: list[Any] = []
    boxes: list[Any] = []
    for x, y, text, style in labels:
        artist = ax.text(x, y, text, ha="center", va="center", **style)
        box = artist.get_window_extent(renderer)
        for step in (0.0, 1.15, -1.15, 2.3, -2.3):
            moved = box.translated(0, step * box.height)
            if not any(moved.overlaps(other) for other in boxes):
                if step:
                    px, py = ax.transData.transform((x, y))
                    nx, ny = ax.transData.inverted().transform((px, py + step * box.height))
                    artist.set_position((float(nx), float(ny)))
                boxes.append(moved)
                kept.append(artist)
                break
        else:
            artist.remove()
    return kept


def _draw(fig: Figure, result: Result, data: MapData, *, label_all: bool) -> None:
    a = result.config.analysis
    ax = fig.add_axes((0.01, 0.06, 0.68, 0.84))
    units = data.units
    west, south, east, north = data.bounds
    pad_x = (east - west) * 0.04
    pad_y = (north - south) * 0.04
    west, east, south, north = west - pad_x, east + pad_x, south - pad_y, north + pad_y
    ax.set_facecolor("#eef0f2")
    unassessed = units.loc[~units["assessed"]]
    assessed = units.loc[units["assessed"]]
    if len(unassessed):
        unassessed.plot(ax=ax, color=NO_DATA_COLOUR, edgecolor="#8a8a8a", linewidth=0.4,
                        linestyle=(0, (2, 2)), alpha=0.7, zorder=1)
    if len(assessed):
        assessed.plot(ax=ax, color=list(assessed["fill"]), edgecolor="#5a5a5a",
                      linewidth=0.5, zorder=2)
    keys = list(result.config.layers)
    colours = layer_colours(result.config.layers)
    if keys and keys[0] in data.unions:
        gpd.GeoSeries([data.unions[keys[0]]], crs="EPSG:4326").plot(
            ax=ax, facecolor="none", edgecolor=colours[keys[0]], linewidth=0.45, zorder=3)
    if data.districts is not None and len(data.districts):
        data.districts.boundary.plot(ax=ax, color="#1a1a1a", linewidth=1.4, zorder=4)
    flagged = units.loc[units["flag"]]
    if len(flagged):
        flagged.boundary.plot(ax=ax, color=FLAG_COLOUR, linewidth=2.0, zorder=5)
    for key in keys:
        points = data.facilities[key]
        colour = colours[key]
        on = points.loc[points["on_network"]]
        off = points.loc[~points["on_network"]]
        # centres (the "1" of 1+N) above the stations that often share their address
        lift = 0.5 if result.config.layers[key].role == "centre" else 0.0
        if len(on):
            ax.scatter(on.geometry.x, on.geometry.y, s=16, c=colour, edgecolors="white",
                       linewidths=0.6, zorder=7 + lift)
        if len(off):
            ax.scatter(off.geometry.x, off.geometry.y, s=12, facecolors="none",
                       edgecolors=colour, linewidths=0.8, zorder=6 + lift)
    labelled = units if label_all else flagged
    labels = []
    for _, row in labelled.sort_values("flag", ascending=False).iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        at = row.geometry.representative_point()
        if not (west <= at.x <= east and south <= at.y <= north):
            continue
        if row["flag"]:  # the flagged 街镇 are placed first: they are the ones to read
            labels.append((at.x, at.y, f"⚠ {row['jiezhen']}", {
                "fontsize": 7, "color": FLAG_COLOUR, "weight": "bold", "zorder": 9,
                "bbox": {"boxstyle": "round,pad=0.15", "fc": "white", "ec": FLAG_COLOUR,
                         "lw": 0.8, "alpha": 0.9}}))
        else:
            labels.append((at.x, at.y, str(row["jiezhen"]),
                           {"fontsize": 6.5, "color": "#333333", "zorder": 8}))
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1 / math.cos(math.radians((south + north) / 2)))
    place_labels(fig, ax, labels)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    _scale_bar(ax, west, south, east, north)

    where = f" · {data.district}" if data.district else ""
    fig.text(0.01, 0.975, f"{result.config.name}{where}：{a.minutes:g} 分钟步行服务圈",
             fontsize=15, weight="bold", va="top")
    fig.text(0.01, 0.935, f"步速 {a.walk_speed_kmh:g} km/h · {a.minutes:g} 分钟 = 路网 "
             f"{a.limit_m:,.0f} m · 配置 {config_file(result)} · "
             f"街镇颜色：{data.share_label}", fontsize=9.5, color="#444444", va="top")
    fig.text(0.01, 0.02, f"街镇边界、路网 {OSM_ATTRIBUTION} (ODbL) · 制图 coverage15",
             fontsize=8, color="#555555")
    _legend(fig, result, data)


def _legend(fig: Figure, result: Result, data: MapData) -> None:
    handles: list[Patch | Line2D] = []
    for colour, lo, hi in zip(SHARE_COLOURS, SHARE_BINS[:-1], SHARE_BINS[1:], strict=True):
        note = "（达到目标）" if data.target is not None and lo >= data.target - 1e-9 else ""
        span = f"≥ {lo:.0%}" if hi > 1 else f"{lo:.0%} – {hi:.0%}"
        handles.append(Patch(facecolor=colour, edgecolor="#5a5a5a", label=span + note))
    handles.append(Patch(facecolor=NO_DATA_COLOUR, edgecolor="#8a8a8a",
                         label="未评估：路网外或仅部分在路网内"))
    flag, judged = data.units["flag"].to_numpy(bool), data.units["assessed"].to_numpy(bool)
    handles.append(Patch(facecolor=SHARE_COLOURS[0], edgecolor=FLAG_COLOUR, linewidth=2,
                         label=f"未达标街镇（{int(flag.sum())} 个），其中已评估 "
                               f"{int((flag & judged).sum())} 个"))
    handles.append(Patch(facecolor=NO_DATA_COLOUR, edgecolor=FLAG_COLOUR, linewidth=2,
                         label=f"灰底红框：步行目标未评估，但数量目标未达标"
                               f"（{int((flag & ~judged).sum())} 个）"))
    layers = list(result.config.layers.items())
    colours = layer_colours(result.config.layers)
    for key, spec in layers:
        colour = colours[key]
        handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor=colour,
                              markeredgecolor="white", markersize=7,
                              label=f"{spec.label}：\n{facility_count_text(data, key)}"))
    if layers:
        handles.append(Line2D([], [], color=colours[layers[0][0]], linewidth=1,
                              label=f"{layers[0][1].label} 15分钟服务圈"))
    handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                          markeredgecolor="#777777", markersize=6,
                          label="空心点：不在路网内，未计算服务圈"))
    handles.append(Line2D([], [], color="#1a1a1a", linewidth=1.4, label="区界"))
    legend = fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.70, 0.9),
                        fontsize=8.5, frameon=False, title=f"街镇颜色：{data.share_label}",
                        title_fontsize=9.5, alignment="left")
    legend.get_title().set_fontweight("bold")
    lines = []
    for rule in result.rules:
        status = ""
        if rule.id in result.check.skipped:
            status = "未评估：本次无该图层"
        for citywide in result.check.citywide:
            if citywide.rule.id == rule.id:
                status = f"全市{'达标' if citywide.passed else '未达标'}：{citywide.value:g}"
        lines += textwrap.wrap(rule.label, 26, initial_indent="• ", subsequent_indent="   ")
        if status:
            lines.append(f"   （{status}）")
    box = legend.get_window_extent().transformed(
        fig.transFigure.inverted())
    top = box.y0 - 0.02
    fig.text(0.705, top, "规划目标", fontsize=9.5, weight="bold", va="top")
    fig.text(0.705, top - 0.03, "\n".join(lines), fontsize=8, va="top", linespacing=1.45)


def render_png(
    result: Result,
    path: str | Path,
    *,
    district: str | None = None,
    dpi: int = 150,
    simplify_m: float = 10.0,
) -> Path:
    """Write one static map of a run.

    Parameters
    ----------
    result
        A finished run.
    path
        PNG file to write.
    district
        One district (all its 街镇 named), or None for the overview of the studied area
        (uncovered 街镇 named).
    dpi
        Resolution; the figure is 12 × 8.5 inches.
    simplify_m
        Display simplification in metres.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        If ``district`` is not a district of the run's 街镇 layer.
    """
    data = map_data(result, district=district, simplify_m=simplify_m, with_areas=False)
    font = cjk_font()
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    target = Path(path)
    with mpl.rc_context({"font.family": "sans-serif", "font.sans-serif": families,
                         "axes.unicode_minus": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        # no Agg canvas while drawing: geopandas asks for a redraw after each layer, which
        # the default canvas skips; savefig picks the PNG backend itself
        fig = Figure(figsize=(12, 8.5), dpi=dpi)
        _draw(fig, result, data, label_all=district is not None)
        fig.savefig(target, format="png", dpi=dpi, facecolor="white",
                    metadata={"Software": "coverage15"})
    return target


def write_pngs(
    result: Result,
    out_dir: str | Path,
    *,
    districts: Sequence[str] | None = None,
    dpi: int = 150,
) -> list[Path]:
    """Write ``overview.png`` and one ``<district>.png`` per district into ``out_dir``.

    Parameters
    ----------
    result
        A finished run.
    out_dir
        Folder, created if needed.
    districts
        Districts to draw; default :func:`png_districts` (those with any 街镇 inside the
        network).
    dpi
        Resolution.

    Returns
    -------
    list of Path
        The files written, overview first.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    names = png_districts(result) if districts is None else list(districts)
    written = [render_png(result, folder / "overview.png", dpi=dpi)]
    for name in names:
        safe = re.sub(r"[\\/:*?\"<>|\s]+", "_", name)
        written.append(render_png(result, folder / f"{safe}.png", district=name, dpi=dpi))
    log.info("wrote %d PNG maps into %s", len(written), folder)
    return written


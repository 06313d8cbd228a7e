"""Charts as inline SVG strings for the HTML reports: no scripts, no network, no plotting library.

Three kinds, enough for every report: ``histogram`` (numeric distributions overlaid on shared
bin edges), ``bars`` (categories, one bar per series), ``curves`` (lines or points: ROC,
precision-recall, calibration, residuals) and ``matrix`` (a heat map with counts: confusion
matrices). Every chart is a ``<figure>`` holding an ``<svg role="img">`` whose ``<title>``
and ``<desc>`` say what it shows, for screen readers and for tooltips; every text is escaped.

``feature_distribution`` draws one feature from TFDV statistics of several datasets
(tensorflow_metadata ``DatasetFeatureStatisticsList``), reading only proto fields, so nothing
here imports TFDV.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

CURRENT = "#1f6fb4"  # the data or model being judged
BASELINE = "#8a8a8a"  # what it is judged against (previous run, training, production)
OTHER = "#d9730d"  # a third series (serving data)
PALETTE = (CURRENT, BASELINE, OTHER, "#2a9d5b", "#b8336a")

WIDTH, HEIGHT = 440, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 30, 62
_MAX_CATEGORIES = 12


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _n(value: float) -> str:
    """A coordinate: short and deterministic."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def label(value: float) -> str:
    """A number as an axis or cell shows it."""
    if value is None or not math.isfinite(value):
        return "?"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers spanning [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def _figure(title: str, description: str, body: str, legend: Sequence[tuple[str, str]],
            width: int, height: int, caption: str = "") -> str:
    keys = ""
    x = _LEFT
    for name, color in legend:
        keys += (f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{color}"/>'
                 f'<text x="{x + 14}" y="{height - 7}" font-size="11">{_e(name)}</text>')
        x += 24 + 7 * len(name)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}" font-family="system-ui,sans-serif">'
           f"<title>{_e(title)}</title><desc>{_e(description)}</desc>"
           f'<text x="{width / 2:g}" y="16" text-anchor="middle" font-size="13" font-weight="bold">'
           f"{_e(title)}</text>{body}{keys}</svg>")
    text = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart">{svg}{text}</figure>'


class _Frame:
    """Maps data coordinates into the plot area and draws the axes."""

    def __init__(self, x_range, y_range, width=WIDTH, height=HEIGHT):
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1
        self.left, self.right = _LEFT, width - _RIGHT
        self.top, self.bottom = _TOP, height - _BOTTOM

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, value: float) -> float:
        return self.bottom - (value - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def axes(self, x_label: str, y_label: str, x_ticks: bool = True) -> str:
        parts = [f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                 f'height="{self.bottom - self.top}" fill="none" stroke="#999"/>']
        for t in ticks(self.y0, self.y1):
            y = _n(self.y(t))
            parts.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y}" y2="{y}" stroke="#eee"/>'
                         f'<text x="{self.left - 4}" y="{y}" dy="4" text-anchor="end" font-size="10">'
                         f"{_e(label(t))}</text>")
        if x_ticks:
            for t in ticks(self.x0, self.x1):
                x = _n(self.x(t))
                parts.append(f'<line x1="{x}" x2="{x}" y1="{self.bottom}" y2="{self.bottom + 4}" '
                             f'stroke="#999"/><text x="{x}" y="{self.bottom + 15}" text-anchor="middle" '
                             f'font-size="10">{_e(label(t))}</text>')
        middle = (self.top + self.bottom) / 2
        parts.append(f'<text x="{(self.left + self.right) / 2:g}" y="{self.bottom + 30}" '
                     f'text-anchor="middle" font-size="11">{_e(x_label)}</text>'
                     f'<text x="12" y="{_n(middle)}" text-anchor="middle" font-size="11" '
                     f'transform="rotate(-90 12 {_n(middle)})">{_e(y_label)}</text>')
        return "".join(parts)


def histogram(title: str, edges: Sequence[float], series: Sequence[tuple[str, Sequence[float]]], *,
              x_label: str = "", y_label: str = "share of rows", caption: str = "") -> str:
    """Numeric distributions on shared bin ``edges``, overlaid: the first series (the current
    data) is drawn last, on top, as a filled step outline over the others.

    Args:
        edges: len(bins) + 1 increasing bin edges.
        series: (name, one value per bin) each; colors follow PALETTE by position.
    """
    if len(edges) < 2 or any(len(values) != len(edges) - 1 for _, values in series):
        raise ValueError(f"histogram {title!r}: every series needs {len(edges) - 1} values, one per bin")
    top = max((v for _, values in series for v in values), default=0.0) or 1.0
    frame = _Frame((edges[0], edges[-1]), (0.0, top * 1.1))
    body = [frame.axes(x_label, y_label)]
    for index in reversed(range(len(series))):
        _, values = series[index]
        color = PALETTE[index % len(PALETTE)]
        points = [(frame.x(edges[0]), frame.y(0))]
        for i, value in enumerate(values):
            points += [(frame.x(edges[i]), frame.y(value)), (frame.x(edges[i + 1]), frame.y(value))]
        points.append((frame.x(edges[-1]), frame.y(0)))
        path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        body.append(f'<polygon points="{path}" fill="{color}" fill-opacity="0.25" stroke="{color}" '
                    f'stroke-width="1.5"/>')
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, (name, _) in enumerate(series)]
    description = "; ".join(f"{name}: " + ", ".join(f"[{label(edges[i])}, {label(edges[i + 1])}) "
                                                     f"{v:.1%}" for i, v in enumerate(values))
                            for name, values in series)
    return _figure(title, description, "".join(body), legend, WIDTH, HEIGHT, caption)


def bars(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
         y_label: str = "share of rows", caption: str = "", percent: bool = True) -> str:
    """One group of bars per category, one bar per series (colors follow PALETTE)."""
    if any(len(values) != len(categories) for _, values in series):
        raise ValueError(f"bars {title!r}: every series needs one value per category ({len(categories)})")
    top = max((v for _, values in series for v in values), default=0.0) or 1.0
    frame = _Frame((0.0, max(len(categories), 1)), (0.0, top * 1.1))
    body = [frame.axes("", y_label, x_ticks=False)]
    slot = (frame.right - frame.left) / max(len(categories), 1)
    width = slot * 0.8 / max(len(series), 1)
    for c, category in enumerate(categories):
        for s, (name, values) in enumerate(series):
            x = frame.left + c * slot + slot * 0.1 + s * width
            y = frame.y(values[c])
            shown = f"{values[c]:.1%}" if percent else label(values[c])
            body.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(frame.bottom - y)}" '
                        f'fill="{PALETTE[s % len(PALETTE)]}"><title>{_e(name)}, {_e(category)}: '
                        f"{_e(shown)}</title></rect>")
        text = category if len(category) <= 12 else category[:11] + "…"
        cx = _n(frame.left + (c + 0.5) * slot)
        body.append(f'<text x="{cx}" y="{frame.bottom + 12}" text-anchor="end" font-size="10" '
                    f'transform="rotate(-30 {cx} {frame.bottom + 12})">{_e(text)}</text>')
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, (name, _) in enumerate(series)]
    description = "; ".join(
        f"{name}: " + ", ".join(f"{c} {v:.1%}" if percent else f"{c} {label(v)}"
                                for c, v in zip(categories, values, strict=True))
        for name, values in series
    )
    return _figure(title, description, "".join(body), legend, WIDTH, HEIGHT, caption)


def curves(title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *,
           x_label: str, y_label: str, x_range: tuple[float, float] | None = None,
           y_range: tuple[float, float] | None = None, diagonal: bool = False, zero_line: bool = False,
           points: bool = False, caption: str = "") -> str:
    """Lines (or, with ``points``, dots) through (x, y) for each (name, xs, ys) series.

    Args:
        x_range, y_range: The axes' ranges; default: the data's.
        diagonal: Draw y = x (a random classifier's ROC, perfect calibration).
        zero_line: Draw y = 0 (residuals).
    """
    xs = [x for _, sx, _ in series for x in sx if math.isfinite(x)]
    ys = [y for _, _, sy in series for y in sy if math.isfinite(y)]
    x_range = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    if y_range is None:
        low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
        pad = (high - low) * 0.05 or 1.0
        y_range = (low - pad, high + pad)
    frame = _Frame(x_range, y_range)
    body = [frame.axes(x_label, y_label)]
    if diagonal:
        low, high = max(frame.x0, frame.y0), min(frame.x1, frame.y1)
        body.append(f'<line x1="{_n(frame.x(low))}" y1="{_n(frame.y(low))}" x2="{_n(frame.x(high))}" '
                    f'y2="{_n(frame.y(high))}" stroke="#bbb" stroke-dasharray="4 3"/>')
    if zero_line and frame.y0 <= 0 <= frame.y1:
        body.append(f'<line x1="{frame.left}" x2="{frame.right}" y1="{_n(frame.y(0))}" '
                    f'y2="{_n(frame.y(0))}" stroke="#555" stroke-dasharray="4 3"/>')
    for index in reversed(range(len(series))):
        _, sx, sy = series[index]
        color = PALETTE[index % len(PALETTE)]
        pairs = [(frame.x(x), frame.y(y)) for x, y in zip(sx, sy, strict=True)
                 if math.isfinite(x) and math.isfinite(y)]
        if points:
            body.append(f'<g fill="{color}" fill-opacity="0.45">' + "".join(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="2"/>' for x, y in pairs) + "</g>")
        elif pairs:
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y in pairs)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, (name, _, _) in enumerate(series)]
    description = (f"{y_label} against {x_label}; " + "; ".join(f"{name}: {len(sx)} points"
                                                                 for name, sx, _ in series))
    return _figure(title, description, "".join(body), legend, WIDTH, HEIGHT, caption)


def matrix(title: str, rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]], *,
           row_title: str = "true", column_title: str = "predicted", caption: str = "") -> str:
    """A heat map with each cell's count written in it; darker is more (per row share)."""
    if len(values) != len(rows) or any(len(r) != len(columns) for r in values):
        raise ValueError(f"matrix {title!r}: expected {len(rows)} rows of {len(columns)} values")
    cell = max(28, min(70, 280 // max(len(rows), len(columns), 1)))
    left, top = 96, 50
    width = max(left + cell * len(columns) + 20, 240)
    height = top + cell * len(rows) + 40
    body = []
    for r, row in enumerate(values):
        total = sum(row) or 1
        for c, value in enumerate(row):
            share = value / total
            # White to the report's blue: lightness follows the share of the true class's rows.
            shade = f"rgb({int(255 - 224 * share)},{int(255 - 144 * share)},{int(255 - 75 * share)})"
            ink = "#fff" if share > 0.55 else "#222"
            x, y = left + c * cell, top + r * cell
            body.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{shade}" stroke="#fff">'
                        f"<title>{_e(row_title)} {_e(rows[r])}, {_e(column_title)} {_e(columns[c])}: "
                        f"{_e(label(value))} ({share:.0%} of the row)</title></rect>"
                        f'<text x="{x + cell / 2:g}" y="{y + cell / 2 + 4:g}" text-anchor="middle" '
                        f'font-size="11" fill="{ink}">{_e(label(value))}</text>')
        body.append(f'<text x="{left - 6}" y="{top + r * cell + cell / 2 + 4:g}" text-anchor="end" '
                    f'font-size="11">{_e(rows[r])}</text>')
    for c, name in enumerate(columns):
        body.append(f'<text x="{left + c * cell + cell / 2:g}" y="{top - 6}" text-anchor="middle" '
                    f'font-size="11">{_e(name)}</text>')
    body.append(f'<text x="{left + cell * len(columns) / 2:g}" y="{top + cell * len(rows) + 18}" '
                f'text-anchor="middle" font-size="11">{_e(column_title)} (columns) / '
                f"{_e(row_title)} (rows)</text>")
    description = "; ".join(f"{row_title} {rows[r]}: " + ", ".join(
        f"{columns[c]} {label(v)}" for c, v in enumerate(row)) for r, row in enumerate(values))
    return _figure(title, description, "".join(body), [], width, height, caption)


def feature_distribution(feature: str, datasets: Sequence[tuple[str, object]], *,
                         caption: str = "") -> list[str]:
    """Charts of one feature's distribution in several datasets, the current one first.

    ``datasets`` are (name, DatasetFeatureStatisticsList or None); a dataset without the
    feature is left out. Numeric statistics are re-binned
    onto shared edges (TFDV's standard histograms, mass spread evenly within a bucket, as the
    histogram assumes); categorical ones compare the most frequent values and "(other)".
    A feature whose kind changed (numbers before, text now) gets one chart per kind.
    """
    found = [(name, _feature(stats, feature)) for name, stats in datasets]
    numeric = [(n, s.num_stats) for n, s in found if s is not None and s.HasField("num_stats")]
    strings = [(n, s.string_stats) for n, s in found if s is not None and s.HasField("string_stats")]
    charts = []
    if numeric:
        charts.append(_numeric_distribution(feature, numeric, caption))
    if strings:
        charts.append(_categorical_distribution(feature, strings, caption))
    return charts


def _feature(stats, name: str):
    if stats is None or not stats.datasets:
        return None
    return next((f for f in stats.datasets[0].features if ".".join(f.path.step) == name), None)


def _standard_histogram(num_stats):
    for histogram_ in num_stats.histograms:
        if histogram_.type == 0:  # STANDARD: equal-width buckets
            return histogram_
    return num_stats.histograms[0] if num_stats.histograms else None


def _numeric_distribution(feature: str, numeric, caption: str) -> str:
    buckets = {}
    for name, num in numeric:
        found = _standard_histogram(num)
        buckets[name] = [(b.low_value, b.high_value, b.sample_count) for b in found.buckets] if found else []
    bounds = [v for spans in buckets.values() for low, high, _ in spans for v in (low, high)
              if math.isfinite(v)]
    if not bounds:
        return _figure(f"{feature}: no values", "No numeric values to draw.", "", [], WIDTH, 60, caption)
    low, high = min(bounds), max(bounds)
    if high <= low:
        high = low + 1.0
    bins = 20
    edges = [low + (high - low) * i / bins for i in range(bins + 1)]
    series = []
    for name, _ in numeric:
        mass = [0.0] * bins
        for b_low, b_high, count in buckets[name]:
            if not count:
                continue
            if not (math.isfinite(b_low) and math.isfinite(b_high)) or b_high <= b_low:
                index = min(bins - 1, max(0, int((b_low - low) / (high - low) * bins))) if math.isfinite(
                    b_low) else 0
                mass[index] += count
                continue
            for i in range(bins):
                overlap = min(b_high, edges[i + 1]) - max(b_low, edges[i])
                if overlap > 0:
                    mass[i] += count * overlap / (b_high - b_low)
        total = sum(mass) or 1.0
        series.append((name, [m / total for m in mass]))
    return histogram(f"{feature}: distribution", edges, series, x_label=feature, caption=caption)


def _categorical_distribution(feature: str, strings, caption: str) -> str:
    shares = []
    for name, stats in strings:
        counts = {b.label: b.sample_count for b in stats.rank_histogram.buckets}
        if not counts:
            counts = {v.value: v.frequency for v in stats.top_values}
        total = stats.common_stats.num_non_missing or sum(counts.values()) or 1.0
        shares.append((name, {k: v / total for k, v in counts.items()}))
    weight: dict[str, float] = {}
    for _, share in shares:
        for key, value in share.items():
            weight[key] = weight.get(key, 0.0) + value
    shown = sorted(weight, key=lambda k: (-weight[k], k))[:_MAX_CATEGORIES]
    rest = any(sum(v for k, v in share.items() if k not in shown) > 1e-9 for _, share in shares)
    categories = shown + (["(other)"] if rest else [])
    series = []
    for name, share in shares:
        values = [share.get(k, 0.0) for k in shown]
        if rest:
            values.append(max(0.0, 1.0 - sum(values)))
        series.append((name, values))
    return bars(f"{feature}: top values", categories, series, caption=caption)

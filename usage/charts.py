"""Small server-side SVG bar charts for the admin dashboard (no JavaScript, nothing fetched from a CDN)."""

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 720, 180, 64, 28, 12


def _nice(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 1 or value == 0:
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    return f"{value:.4f}"


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, color: str = "#417690") -> str:
    top = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(1, len(values))
    bars = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / top
        x = PAD_LEFT + index * step
        y = PAD_TOP + plot_h - height
        bars.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(1, step - 2):.1f}" height="{height:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {_nice(value)}</title></rect>"
        )
        if index % max(1, len(values) // 6) == 0:
            bars.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    axis = (
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 8}" y2="{PAD_TOP + plot_h}" stroke="#999"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" font-size="10" text-anchor="end">{_nice(top)}</text>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" font-size="10" text-anchor="end">0</text>'
    )
    return (
        f'<figure class="usage-chart"><figcaption><strong>{escape(title)}</strong></figcaption>'
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'style="max-width:{WIDTH}px">{axis}{"".join(bars)}</svg></figure>'
    )

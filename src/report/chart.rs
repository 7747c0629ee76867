//! Small inline-SVG line charts for the `report.html` of `run` and of `db-bench`: axes (linear
//! or log10), ticks, grid, series, horizontal reference lines (budgets), legend. Drawn in Rust
//! so the reports need no JavaScript and fetch nothing. Also the one escaper of their text.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Escapes text for HTML and SVG (`&`, `<`, `>`, `"`, `'`): the one escaper of every page the
/// harness writes.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

/// The style a page needs for [`Chart::render`]'s classes (self-contained: no variables).
pub(crate) const CHART_CSS: &str = r#"
svg.chart { background: #fff; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #1f2328; }
svg.chart text.title { font-size: 13px; font-weight: 600; }
svg.chart text.axis { fill: #57606a; }
svg.chart text.empty { fill: #57606a; font-size: 13px; }
svg.chart line.grid { stroke: #eaeef2; }
svg.chart rect.frame { fill: none; stroke: #8c959f; }
svg.chart line.reference { stroke-dasharray: 6 4; stroke-width: 1.5; }
"#;

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    Linear,
    /// log10 of the value; values must be > 0.
    Log10,
}

/// One axis: its range (in data units), scale, tick marks with labels, and title.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub(crate) scale: Scale,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) ticks: Vec<(f64, String)>,
    pub(crate) title: String,
}

impl Axis {
    /// Position of `v` in `0.0..=1.0` along the axis (clamped).
    fn fraction(&self, v: f64) -> f64 {
        let (lo, hi, v) = match self.scale {
            Scale::Linear => (self.min, self.max, v),
            Scale::Log10 => (
                self.min.max(f64::MIN_POSITIVE).log10(),
                self.max.max(f64::MIN_POSITIVE).log10(),
                v.max(f64::MIN_POSITIVE).log10(),
            ),
        };
        if hi <= lo {
            return 0.0;
        }
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    }

    /// A linear axis from 0 to a "nice" value at or above `max`, about five ticks, labelled by
    /// `label`.
    pub(crate) fn linear_from_zero(max: f64, title: &str, label: impl Fn(f64) -> String) -> Axis {
        let step = nice_step(if max > 0.0 { max } else { 1.0 } / 5.0);
        let top = (max / step).ceil().max(1.0) * step;
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= top + step * 1e-9)
            .map(|v| (v, label(v)))
            .collect();
        Axis {
            scale: Scale::Linear,
            min: 0.0,
            max: top,
            ticks,
            title: title.into(),
        }
    }

    /// A log10 axis covering `min..=max` (both > 0) with a tick at each power of ten.
    pub(crate) fn log10_decades(
        min: f64,
        max: f64,
        title: &str,
        label: impl Fn(f64) -> String,
    ) -> Axis {
        let lo = min.max(1e-9).log10().floor();
        let hi = max.max(min * 10.0).log10().ceil().max(lo + 1.0);
        let ticks = (lo as i32..=hi as i32)
            .map(|e| {
                let v = 10f64.powi(e);
                (v, label(v))
            })
            .collect();
        Axis {
            scale: Scale::Log10,
            min: 10f64.powf(lo),
            max: 10f64.powf(hi),
            ticks,
            title: title.into(),
        }
    }
}

/// 1, 2 or 5 times a power of ten, at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Style {
    Line,
    /// A wide translucent line, drawn under the others: where a thin line runs on top of it
    /// (p95 equal to p99), both stay visible.
    Halo,
}

#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) color: String,
    pub(crate) style: Style,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A dashed horizontal reference line, e.g. a budget limit.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub(crate) y: f64,
    pub(crate) label: String,
    pub(crate) color: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Identifies the chart in the page (`data-chart`), e.g. `spectrum`.
    pub(crate) kind: String,
    /// The operation the chart is about, if any (`data-op`).
    pub(crate) operation: Option<String>,
    pub(crate) title: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) x: Axis,
    pub(crate) y: Axis,
    pub(crate) series: Vec<Series>,
    pub(crate) references: Vec<Reference>,
    /// Shown in the plot area when no series has a point.
    pub(crate) empty_note: String,
    /// Events on the x axis (injected faults): a shaded span and a labelled line.
    pub(crate) markers: Vec<Marker>,
}

/// An event on a time axis: a vertical line at `from`, a shaded span to `to`, a label.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    pub(crate) from: f64,
    pub(crate) to: f64,
    pub(crate) label: String,
}

const MARGIN_LEFT: f64 = 64.0;
const MARGIN_RIGHT: f64 = 30.0;
const MARGIN_TOP: f64 = 30.0;
const MARGIN_BOTTOM: f64 = 58.0;

/// The plot area (inside the margins) and the mapping from data values to its coordinates.
struct Plot<'a> {
    x: &'a Axis,
    y: &'a Axis,
    w: f64,
    h: f64,
}

impl Plot<'_> {
    /// Picture x of data value `x`.
    fn px(&self, x: f64) -> f64 {
        MARGIN_LEFT + self.x.fraction(x) * self.w
    }

    /// Picture y of data value `y` (up is larger).
    fn py(&self, y: f64) -> f64 {
        MARGIN_TOP + (1.0 - self.y.fraction(y)) * self.h
    }
}

impl Chart {
    /// The chart as an `<svg>` element. `data-points` counts the points drawn, so tests (and
    /// readers of the page source) can tell an empty chart from one with data.
    pub(crate) fn render(&self) -> String {
        let w = self.width as f64;
        let legend = self.legend_layout(w);
        let legend_rows = legend.last().map(|(_, row, _, _)| row + 1).unwrap_or(0);
        // The legend's first row fits in the bottom margin; more rows grow the picture.
        let h = self.height as f64 + 14.0 * legend_rows.saturating_sub(1) as f64;
        let plot = Plot {
            x: &self.x,
            y: &self.y,
            w: w - MARGIN_LEFT - MARGIN_RIGHT,
            h: self.height as f64 - MARGIN_TOP - MARGIN_BOTTOM,
        };
        let points: usize = self.series.iter().map(|s| s.points.len()).sum();

        let mut s = String::new();
        self.open_svg(&mut s, w, h, points);
        self.axes(&mut s, &plot);
        for series in &self.series {
            series_svg(&mut s, series, &plot);
        }
        self.references_and_markers(&mut s, &plot);
        if points == 0 {
            let _ = write!(
                s,
                r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                MARGIN_LEFT + plot.w / 2.0,
                MARGIN_TOP + plot.h / 2.0,
                escape(self.empty_note.as_str())
            );
        }
        self.legend_svg(&mut s, &legend);
        s.push_str("</svg>");
        s
    }

    /// The `<svg>` opening tag (what the chart is, for tests and readers) and the title.
    fn open_svg(&self, s: &mut String, w: f64, h: f64, points: usize) {
        let _ = write!(
            s,
            r#"<svg class="chart" data-chart="{}"{} data-points="{points}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
            escape(self.kind.as_str()),
            self.operation
                .as_deref()
                .map(|o| format!(r#" data-op="{}""#, escape(o)))
                .unwrap_or_default(),
            escape(self.title.as_str()),
        );
        let _ = write!(
            s,
            r#"<text class="title" x="{MARGIN_LEFT}" y="18">{}</text>"#,
            escape(self.title.as_str())
        );
    }

    /// Grid lines with tick labels, the plot frame and both axis titles.
    fn axes(&self, s: &mut String, plot: &Plot) {
        for (v, label) in &self.y.ticks {
            let y = plot.py(*v);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{MARGIN_LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                MARGIN_LEFT + plot.w,
                MARGIN_LEFT - 6.0,
                y + 4.0,
                escape(label.as_str())
            );
        }
        for (v, label) in &self.x.ticks {
            let x = plot.px(*v);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{MARGIN_TOP}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                MARGIN_TOP + plot.h,
                MARGIN_TOP + plot.h + 16.0,
                escape(label.as_str())
            );
        }
        let _ = write!(
            s,
            r#"<rect class="frame" x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{:.1}" height="{:.1}"/>"#,
            plot.w, plot.h
        );
        let _ = write!(
            s,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            MARGIN_LEFT + plot.w / 2.0,
            MARGIN_TOP + plot.h + 32.0,
            escape(self.x.title.as_str())
        );
        let _ = write!(
            s,
            r#"<text class="axis" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            MARGIN_TOP + plot.h / 2.0,
            escape(self.y.title.as_str())
        );
    }

    /// Dashed reference lines (budgets) with their labels, then event markers (faults) as a
    /// shaded span and a labelled line.
    fn references_and_markers(&self, s: &mut String, plot: &Plot) {
        for r in &self.references {
            let y = plot.py(r.y);
            let _ = write!(
                s,
                r#"<line class="reference" x1="{MARGIN_LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{}"/><text class="reference-label" x="{:.1}" y="{:.1}" text-anchor="end" fill="{}">{}</text>"#,
                MARGIN_LEFT + plot.w,
                r.color,
                MARGIN_LEFT + plot.w - 4.0,
                y - 4.0,
                r.color,
                escape(r.label.as_str())
            );
        }
        for m in &self.markers {
            let (x0, x1) = (plot.px(m.from), plot.px(m.to.max(m.from)));
            let _ = write!(
                s,
                r##"<g class="marker" data-marker="{}"><rect x="{x0:.1}" y="{MARGIN_TOP}" width="{:.1}" height="{:.1}" fill="#d62728" fill-opacity="0.12"/><line x1="{x0:.1}" x2="{x0:.1}" y1="{MARGIN_TOP}" y2="{:.1}" stroke="#d62728" stroke-width="1.5"/><text class="marker-label" x="{:.1}" y="{:.1}" fill="#d62728">{}</text><title>{}</title></g>"##,
                escape(m.label.as_str()),
                (x1 - x0).max(1.0),
                plot.h,
                MARGIN_TOP + plot.h,
                x0 + 3.0,
                MARGIN_TOP + 10.0,
                escape(m.label.as_str()),
                escape(m.label.as_str())
            );
        }
    }

    /// The legend, below the axis title, from [`Chart::legend_layout`]'s entries.
    fn legend_svg(&self, s: &mut String, legend: &[(f64, usize, &str, &str)]) {
        for (x, row, name, color) in legend {
            let ly = self.height as f64 - 10.0 + 14.0 * *row as f64;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text class="legend" x="{:.1}" y="{ly:.1}">{}</text>"#,
                ly - 9.0,
                x + 14.0,
                escape(name)
            );
        }
    }
}

/// One series: a dot when it has a single point (a line needs two), else a polyline; a halo
/// is wide and translucent so a thin line on top of it stays visible.
fn series_svg(s: &mut String, series: &Series, plot: &Plot) {
    let name = escape(series.name.as_str());
    let (width, opacity) = match series.style {
        Style::Halo => ("5", "0.45"),
        Style::Line => ("1.8", "1"),
    };
    if series.points.len() == 1 {
        let (x, y) = series.points[0];
        let _ = write!(
            s,
            r#"<circle class="series" data-series="{name}" cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{name}</title></circle>"#,
            plot.px(x),
            plot.py(y),
            series.color
        );
        return;
    }
    let pts: Vec<String> = series
        .points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", plot.px(*x), plot.py(*y)))
        .collect();
    let _ = write!(
        s,
        r#"<polyline class="series" data-series="{name}" fill="none" stroke="{}" stroke-width="{width}" stroke-opacity="{opacity}" points="{}"><title>{name}</title></polyline>"#,
        series.color,
        pts.join(" ")
    );
}

impl Chart {
    /// Legend entries as `(x, row, name, colour)`, wrapped to the chart's width. No legend for
    /// a single series (the title names it).
    fn legend_layout(&self, width: f64) -> Vec<(f64, usize, &str, &str)> {
        if self.series.len() < 2 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let (mut x, mut row) = (MARGIN_LEFT, 0);
        for s in &self.series {
            let item_w = 22.0 + 6.5 * s.name.chars().count() as f64;
            if x + item_w > width - MARGIN_RIGHT && x > MARGIN_LEFT {
                x = MARGIN_LEFT;
                row += 1;
            }
            out.push((x, row, s.name.as_str(), s.color.as_str()));
            x += item_w;
        }
        out
    }
}

/// Twenty distinguishable colours (Tableau 20: ten hues, each dark then light), so every
/// operation of a run gets its own; cycled only past twenty.
pub(crate) const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

/// The palette's colour for series `i`.
pub(crate) fn color(i: usize) -> String {
    PALETTE[i % PALETTE.len()].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_five() {
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(130.0), 200.0);
    }

    #[test]
    fn log_axis_maps_decades_evenly() {
        let a = Axis::log10_decades(1.0, 1000.0, "x", |v| v.to_string());
        assert_eq!(a.ticks.len(), 4);
        assert!((a.fraction(10.0) - 1.0 / 3.0).abs() < 1e-9);
        assert!((a.fraction(1000.0) - 1.0).abs() < 1e-9);
    }
}

//! Hand-written SVG charts for the report: grouped bars and lines over categories, with
//! a linear or logarithmic value axis. Plain SVG 1.1, no scripts, readable on GitHub.

use std::fmt::Write as _;

/// One series of values (one per category; `None` leaves a gap).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Fill or stroke colour.
    pub color: &'static str,
    /// One value per category.
    pub values: Vec<Option<f64>>,
}

/// A chart over categories.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label of the value axis.
    pub y_label: String,
    /// Label of the category axis.
    pub x_label: String,
    /// Category labels.
    pub categories: Vec<String>,
    /// The series.
    pub series: Vec<Series>,
    /// Logarithmic value axis.
    pub log_y: bool,
}

/// The colour of Apache ZooKeeper's series.
pub const JAVA_COLOR: &str = "#d9822b";
/// The colour of ferrokeeper's series.
pub const FK_COLOR: &str = "#2b6cb0";

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 58.0;
const BOTTOM: f64 = 80.0;

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let vals: Vec<f64> = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let max = vals.iter().cloned().fold(f64::MIN, f64::max);
        let min = vals.iter().cloned().fold(f64::MAX, f64::min);
        if vals.is_empty() {
            return Axis {
                lo: if log { 1.0 } else { 0.0 },
                hi: 10.0,
                log,
            };
        }
        if log {
            let lo = 10f64.powf(min.log10().floor());
            let mut hi = 10f64.powf(max.log10().ceil());
            if hi <= lo {
                hi = lo * 10.0;
            }
            Axis { lo, hi, log }
        } else {
            let hi = nice_ceiling(max.max(1e-9));
            Axis { lo: 0.0, hi, log }
        }
    }

    /// Position of `v` between 0 (bottom) and 1 (top).
    fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        f.clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut t = Vec::new();
            let mut v = self.lo;
            while v <= self.hi * 1.0001 {
                t.push(v);
                v *= 10.0;
            }
            t
        } else {
            (0..=5)
                .map(|i| self.lo + (self.hi - self.lo) * i as f64 / 5.0)
                .collect()
        }
    }
}

fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// A number in a short form: 1.2k, 35k, 1.5M.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn frame(chart: &Chart, axis: &Axis, out: &mut String) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>
"##,
        WIDTH / 2.0,
        escape(&chart.title)
    );
    for t in axis.ticks() {
        let y = TOP + plot_h * (1.0 - axis.frac(t));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e2e2e2"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            short_number(t)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#555"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555"/>"##,
        TOP + plot_h,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h
    );
    let _ = writeln!(
        out,
        r##"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"##,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(&chart.y_label)
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 12.0,
        escape(&chart.x_label)
    );
    // Legend, one row under the title.
    let mut x = LEFT;
    for s in &chart.series {
        let _ = writeln!(
            out,
            r##"<rect x="{x:.1}" y="32" width="12" height="12" fill="{}"/><text x="{:.1}" y="42">{}</text>"##,
            s.color,
            x + 18.0,
            escape(&s.name)
        );
        x += 30.0 + 7.0 * s.name.len() as f64;
    }
}

fn category_x(i: usize, n: usize) -> f64 {
    let plot_w = WIDTH - LEFT - RIGHT;
    LEFT + plot_w * (i as f64 + 0.5) / n.max(1) as f64
}

fn category_labels(chart: &Chart, out: &mut String) {
    let n = chart.categories.len();
    let y = HEIGHT - BOTTOM + 16.0;
    // Long labels in many columns would touch: shrink them.
    let longest = chart.categories.iter().map(|c| c.len()).max().unwrap_or(1);
    let room = (WIDTH - LEFT - RIGHT) / n.max(1) as f64;
    let size = (room / (longest as f64 * 0.62)).clamp(8.0, 12.0).floor();
    for (i, c) in chart.categories.iter().enumerate() {
        let x = category_x(i, n);
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="{size}">{}</text>"##,
            escape(c)
        );
    }
}

fn axis_of(chart: &Chart) -> Axis {
    Axis::new(
        chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied()),
        chart.log_y,
    )
}

/// Grouped bars: one group per category, one bar per series.
pub fn bar_chart(chart: &Chart) -> String {
    let axis = axis_of(chart);
    let mut out = String::new();
    frame(chart, &axis, &mut out);
    let n = chart.categories.len();
    let plot_h = HEIGHT - TOP - BOTTOM;
    let group_w = (WIDTH - LEFT - RIGHT) / n.max(1) as f64 * 0.8;
    let bar_w = group_w / chart.series.len().max(1) as f64;
    for (si, s) in chart.series.iter().enumerate() {
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let h = plot_h * axis.frac(*v);
            let x = category_x(i, n) - group_w / 2.0 + si as f64 * bar_w;
            let _ = writeln!(
                out,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {}</title></rect>"##,
                TOP + plot_h - h,
                bar_w * 0.92,
                s.color,
                escape(&s.name),
                short_number(*v)
            );
        }
    }
    category_labels(chart, &mut out);
    out.push_str("</svg>\n");
    out
}

/// Lines with markers: one point per category per series.
pub fn line_chart(chart: &Chart) -> String {
    let axis = axis_of(chart);
    let mut out = String::new();
    frame(chart, &axis, &mut out);
    let n = chart.categories.len();
    let plot_h = HEIGHT - TOP - BOTTOM;
    for s in &chart.series {
        let points: Vec<(f64, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (category_x(i, n), TOP + plot_h * (1.0 - axis.frac(v)))))
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
            path.join(" "),
            s.color
        );
        for (x, y) in points {
            let _ = writeln!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{}"/>"##,
                s.color
            );
        }
    }
    category_labels(chart, &mut out);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_y: bool) -> Chart {
        Chart {
            title: "t <&>".into(),
            y_label: "ops/s".into(),
            x_label: "x".into(),
            categories: vec!["a".into(), "b".into()],
            series: vec![
                Series {
                    name: "ZooKeeper".into(),
                    color: JAVA_COLOR,
                    values: vec![Some(1200.0), None],
                },
                Series {
                    name: "ferrokeeper".into(),
                    color: FK_COLOR,
                    values: vec![Some(35_000.0), Some(0.5)],
                },
            ],
            log_y,
        }
    }

    #[test]
    fn charts_are_well_formed_svg() {
        for log in [false, true] {
            for svg in [bar_chart(&chart(log)), line_chart(&chart(log))] {
                assert!(svg.starts_with("<svg"));
                assert!(svg.trim_end().ends_with("</svg>"));
                assert!(svg.contains("t &lt;&amp;&gt;"));
                assert!(!svg.contains("NaN"));
            }
        }
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(35_000.0), "35k");
        assert_eq!(short_number(2_000_000.0), "2M");
        assert_eq!(short_number(0.5), "0.5");
    }
}

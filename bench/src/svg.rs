//! The report's charts: grouped bars and lines over categories, with a linear or
//! logarithmic value axis, drawn by `plotters` into SVG.
//!
//! Only plotters' SVG backend is used, without its font features: its text layout is then
//! a size estimate of its own and every label is an SVG `<text>` element that the viewer
//! renders in its sans-serif font, so no font files or system libraries are needed to
//! draw a chart, and the files stay plain SVG 1.1 without scripts, readable on GitHub.
//!
//! The layout is plotters', with two things drawn by hand on its drawing areas: the legend,
//! one row under the title (plotters' own legend box would sit inside the plot, over the
//! bars), and the bars of a group side by side within their category.

use std::io;
use std::ops::Range;

use plotters::coord::ranged1d::{
    AsRangedCoord, KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One series of values (one per category; `None` leaves a gap).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Fill or stroke colour.
    pub color: RGBColor,
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
pub const JAVA_COLOR: RGBColor = RGBColor(0xd9, 0x82, 0x2b);
/// The colour of ferrokeeper's series.
pub const FK_COLOR: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);

/// The colour of a server's series in every chart.
pub fn server_color(kind: crate::server::ServerKind) -> RGBColor {
    match kind {
        crate::server::ServerKind::Java => JAVA_COLOR,
        crate::server::ServerKind::Ferrokeeper => FK_COLOR,
    }
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 400;
/// Height of the title row and of the legend row under it, px.
const TITLE_HEIGHT: u32 = 30;
const LEGEND_HEIGHT: u32 = 24;

/// Font sizes as plotters takes them: its SVG backend writes `size / 1.24` into the file
/// (plotters' point-to-pixel factor), and the axes round sizes to whole numbers, so 15
/// is about 12 px on the page and 19 about 15 px.
const PLOTTERS_PX: f64 = 1.24;
const TEXT_SIZE: f64 = 15.0;
const TITLE_SIZE: f64 = 19.0;

const GRID_COLOR: RGBColor = RGBColor(0xe2, 0xe2, 0xe2);
const AXIS_COLOR: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The value axis: from `lo` to `hi`, whole decades when logarithmic, from 0 to a round
/// ceiling when linear, so the ticks fall on round numbers.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn of(chart: &Chart) -> Axis {
        let log = chart.log_y;
        let vals: Vec<f64> = chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        if vals.is_empty() {
            return Axis {
                lo: if log { 1.0 } else { 0.0 },
                hi: 10.0,
                log,
            };
        }
        let max = vals.iter().cloned().fold(f64::MIN, f64::max);
        let min = vals.iter().cloned().fold(f64::MAX, f64::min);
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

    /// How many labels to ask plotters for: one per decade (it then draws no
    /// intermediate ones), or six on a linear axis.
    fn labels(&self) -> usize {
        if self.log {
            (self.hi / self.lo).log10().round() as usize + 1
        } else {
            6
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

/// The category axis: category `i` spans `i .. i + 1`, with its tick and label at the
/// middle, `i + 0.5`, where plotters' numeric axes would put round numbers instead.
struct Categories {
    n: usize,
}

impl Ranged for Categories {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = f64::from(limit.1 - limit.0);
        limit.0 + (span * value / self.n as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.n).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> Range<f64> {
        0.0..self.n as f64
    }
}

impl ValueFormatter<f64> for Categories {
    // Only used when no label formatter is given; the charts always give the names.
    fn format(value: &f64) -> String {
        format!("{value}")
    }
}

/// Bars or lines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Marks {
    Bars,
    Lines,
}

/// Grouped bars: one group per category, one bar per series.
pub fn bar_chart(chart: &Chart) -> io::Result<String> {
    draw(chart, Marks::Bars)
}

/// Lines with markers: one point per category per series.
pub fn line_chart(chart: &Chart) -> io::Result<String> {
    draw(chart, Marks::Lines)
}

/// A drawing error as an I/O error. The backend writes into a `String` and the font
/// layout is an estimate, so none is expected; the report's writer handles it as it
/// handles a file that cannot be written.
fn drawing_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("drawing a chart: {e}"))
}

fn draw(chart: &Chart, marks: Marks) -> io::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let (title, rest) = root.split_vertically(TITLE_HEIGHT);
        let (legend, plot) = rest.split_vertically(LEGEND_HEIGHT);
        title
            .draw(&Text::new(
                chart.title.as_str(),
                (WIDTH as i32 / 2, TITLE_HEIGHT as i32 / 2 + 4),
                ("sans-serif", TITLE_SIZE)
                    .into_font()
                    .style(FontStyle::Bold)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(drawing_error)?;
        draw_legend(&legend, chart).map_err(drawing_error)?;
        let axis = Axis::of(chart);
        if axis.log {
            // Plotters starts the labels at the first decade at or above the axis' start,
            // found through logarithms that can land a hair above a start that is a decade
            // itself (0.1), and would then skip its label: start the range a hair below.
            let lo = axis.lo * (1.0 - 1e-9);
            draw_plot(&plot, chart, marks, &axis, (lo..axis.hi).log_scale())
        } else {
            draw_plot(&plot, chart, marks, &axis, axis.lo..axis.hi)
        }
        .map_err(drawing_error)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(out)
}

/// The legend: a colour square and the series' name, side by side in one row.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut x = 80;
    for s in &chart.series {
        area.draw(&Rectangle::new([(x, 4), (x + 12, 16)], s.color.filled()))?;
        area.draw(&Text::new(
            s.name.as_str(),
            (x + 18, 10),
            ("sans-serif", TEXT_SIZE)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += 30 + 7 * s.name.chars().count() as i32;
    }
    Ok(())
}

/// The axes, the grid and the marks. Category `i` spans `i .. i + 1` on the x axis, its
/// label at `i + 0.5`.
fn draw_plot<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    marks: Marks,
    axis: &Axis,
    y_range: Y,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let n = chart.categories.len().max(1);
    let mut ctx = ChartBuilder::on(area)
        .margin_left(10)
        .margin_right(20)
        .margin_top(10)
        .margin_bottom(10)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(Categories { n }, y_range)?;
    // Long labels in many columns would touch: shrink them.
    let longest = chart
        .categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1);
    let room = f64::from(WIDTH - 100) / n as f64;
    let category_size =
        ((room / (longest as f64 * 0.62)).clamp(8.0, 12.0).floor() * PLOTTERS_PX).round();
    let category_label = |x: &f64| {
        let i = x.floor().max(0.0) as usize;
        chart.categories.get(i).cloned().unwrap_or_default()
    };
    let value_label = |y: &f64| short_number(*y);
    ctx.configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS_COLOR)
        .x_labels(n)
        .y_labels(axis.labels())
        .x_label_formatter(&category_label)
        .y_label_formatter(&value_label)
        .x_label_style(("sans-serif", category_size))
        .y_label_style(("sans-serif", TEXT_SIZE))
        .axis_desc_style(("sans-serif", TEXT_SIZE))
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .draw()?;
    let series_count = chart.series.len().max(1);
    for (si, s) in chart.series.iter().enumerate() {
        let points: Vec<(f64, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i as f64, v)))
            .collect();
        match marks {
            Marks::Bars => {
                // The group fills 80 % of the category; each bar 92 % of its share.
                let bar = 0.8 / series_count as f64;
                ctx.draw_series(points.iter().map(|&(i, v)| {
                    let x0 = i + 0.1 + si as f64 * bar;
                    Rectangle::new(
                        [(x0, axis.lo), (x0 + bar * 0.92, v.max(axis.lo))],
                        s.color.filled(),
                    )
                }))?;
            }
            Marks::Lines => {
                let centered: Vec<(f64, f64)> = points.iter().map(|&(i, v)| (i + 0.5, v)).collect();
                ctx.draw_series(std::iter::once(PathElement::new(
                    centered.clone(),
                    s.color.stroke_width(2),
                )))?;
                ctx.draw_series(
                    centered
                        .into_iter()
                        .map(|p| Circle::new(p, 3, s.color.filled())),
                )?;
            }
        }
    }
    Ok(())
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
                let svg = svg.expect("a chart draws into a string");
                assert!(svg.starts_with("<svg"));
                assert!(svg.trim_end().ends_with("</svg>"));
                assert!(svg.contains("t &lt;&amp;&gt;"));
                assert!(!svg.contains("NaN"));
                // The labels are text the viewer renders, not outlines from a font file.
                for text in ["ZooKeeper", "ferrokeeper", "ops/s", "\na\n", "\nb\n"] {
                    assert!(svg.contains(text), "{text} missing from the chart");
                }
            }
        }
    }

    /// How many times `needle` occurs in `svg`.
    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn every_value_is_drawn_in_its_series_colour() {
        let java = r##"fill="#D9822B""##;
        let fk = r##"fill="#2B6CB0""##;
        for log in [false, true] {
            // A legend square per series, then one bar per value; `None` draws nothing.
            let bars = bar_chart(&chart(log)).expect("a chart draws into a string");
            assert_eq!(count(&bars, java), 1 + 1);
            assert_eq!(count(&bars, fk), 1 + 2);
            // A line per series through one marker per value.
            let lines = line_chart(&chart(log)).expect("a chart draws into a string");
            assert_eq!(count(&lines, "<circle"), 3);
            assert_eq!(count(&lines, java), 1 + 1);
            assert_eq!(count(&lines, fk), 1 + 2);
            assert_eq!(count(&lines, r##"stroke="#D9822B""##), 1);
            assert_eq!(count(&lines, r##"stroke="#2B6CB0""##), 1);
        }
    }

    #[test]
    fn a_log_axis_is_labelled_in_whole_decades() {
        // 0.5 .. 35,000 spans 0.1 .. 100k.
        let svg = bar_chart(&chart(true)).expect("a chart draws into a string");
        for label in ["0.1", "1", "10", "100", "1k", "10k", "100k"] {
            assert!(svg.contains(&format!("\n{label}\n")), "no {label} tick");
        }
        assert!(!svg.contains("\n2k\n"), "ticks between decades");
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(35_000.0), "35k");
        assert_eq!(short_number(2_000_000.0), "2M");
        assert_eq!(short_number(0.5), "0.5");
    }
}

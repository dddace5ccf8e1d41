//! An SVG chart of one or more runs, drawn with plotters: produce throughput and p99 ack
//! latency against message size and against partition count, one line per storage and ack
//! mode. Colours tell the ack modes apart, and every second storage is dashed.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::Results;
use crate::stats::size_name;

const PANEL_W: u32 = 460;
const PANEL_H: u32 = 300;
const LEGEND_COLUMNS: usize = 3;
const LEGEND_ROW_H: u32 = 18;
const FONT: &str = "sans-serif";
/// plotters takes a font's line height and writes `font-size` as that ÷ 1.24.
const LINE_HEIGHT_PER_PX: f64 = 1.24;
/// One colour per ack mode (durable, buffered, none), then for anything else.
const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];
const GRID: RGBColor = RGBColor(0xe5, 0xe5, 0xe5);
const FRAME: RGBColor = RGBColor(0x99, 0x99, 0x99);

struct Series {
    name: String,
    color: RGBColor,
    dashed: bool,
    /// One value per x category; `None` where the run has no such point.
    values: Vec<Option<f64>>,
}

struct Panel {
    title: String,
    x_label: &'static str,
    categories: Vec<String>,
    y_label: &'static str,
    log_y: bool,
    series: Vec<Series>,
}

/// The four panels as one SVG document, with one legend under them.
pub fn render(runs: &[Results]) -> anyhow::Result<String> {
    let panels = panels(runs);
    // Every panel has the same series, in the same order.
    let legend = &panels[0].series;
    let legend_h = 24 + LEGEND_ROW_H * legend.len().div_ceil(LEGEND_COLUMNS) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL_W * 2, PANEL_H * 2 + legend_h))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let (grid, legend_area) = root.split_vertically(PANEL_H * 2);
        for (panel, area) in panels.iter().zip(grid.split_evenly((2, 2))) {
            if panel.log_y {
                plot(&area, panel, log_axis(panel).log_scale())?;
            } else {
                plot(&area, panel, 0.0..linear_top(panel))?;
            }
        }
        draw_legend(&legend_area, legend)?;
        root.present()?;
    }
    Ok(svg)
}

/// The figure a panel plots for each point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    MaxMbPerS,
    /// Of the run at `--latency-load`: the latency figure to read.
    P99AckMs,
}

impl Figure {
    fn of(self, run: &Results, (size, partitions): (usize, u32), ack: &str) -> Option<f64> {
        let point = run.point(size, partitions, ack)?;
        match self {
            Self::MaxMbPerS => Some(point.max.mb_per_s),
            Self::P99AckMs => point.at_load.as_ref()?.ack.p99_ms,
        }
    }
}

/// What the four panels show: throughput and p99 against message size (at 10 partitions
/// when measured, the scaling goal's reference) and against partitions (at 1 KiB when
/// measured).
fn panels(runs: &[Results]) -> [Panel; 4] {
    let sizes = distinct(runs, |p| p.size);
    let parts = distinct(runs, |p| p.partitions);
    let size_parts = if parts.contains(&10) {
        10
    } else {
        parts.first().copied().unwrap_or(1)
    };
    let part_size = if sizes.contains(&1024) {
        1024
    } else {
        sizes.first().copied().unwrap_or(1024)
    };
    let labels = distinct_in_order(runs.iter().map(|r| r.label.clone()));
    let keys = distinct_in_order(
        runs.iter()
            .flat_map(|r| r.points.iter().map(|p| (r.label.clone(), p.ack.clone()))),
    );
    let series = |figure: Figure, xs: &[(usize, u32)]| -> Vec<Series> {
        keys.iter()
            .enumerate()
            .map(|(i, (label, ack))| {
                let run = runs.iter().find(|r| &r.label == label);
                let mode = ["durable", "buffered", "none"]
                    .iter()
                    .position(|a| a == ack);
                Series {
                    name: format!("{label} {ack}"),
                    color: COLORS[mode.unwrap_or(i) % COLORS.len()],
                    dashed: labels.iter().position(|l| l == label).unwrap_or(0) % 2 == 1,
                    values: xs
                        .iter()
                        .map(|x| run.and_then(|r| figure.of(r, *x, ack)))
                        .collect(),
                }
            })
            .collect()
    };
    let by_size: Vec<(usize, u32)> = sizes.iter().map(|s| (*s, size_parts)).collect();
    let by_parts: Vec<(usize, u32)> = parts.iter().map(|p| (part_size, *p)).collect();
    let size_names: Vec<String> = sizes.iter().map(|s| size_name(*s)).collect();
    let part_names: Vec<String> = parts.iter().map(ToString::to_string).collect();
    let latency_load = runs.first().map_or(0.5, |r| r.settings.latency_load) * 100.0;
    let panel = |figure: Figure, x_label, categories: &[String], xs: &[(usize, u32)], of: &str| {
        let (title, y_label) = match figure {
            Figure::MaxMbPerS => (format!("Produce MB/s vs {x_label} ({of})"), "MB/s (max)"),
            Figure::P99AckMs => (
                format!("p99 ack at {latency_load:.0}% load vs {x_label} ({of})"),
                "p99 ms (log)",
            ),
        };
        Panel {
            title,
            x_label,
            categories: categories.to_vec(),
            y_label,
            log_y: figure == Figure::P99AckMs,
            series: series(figure, xs),
        }
    };
    let at_parts = format!("{size_parts} partitions");
    let at_size = size_name(part_size);
    [
        panel(
            Figure::MaxMbPerS,
            "message size",
            &size_names,
            &by_size,
            &at_parts,
        ),
        panel(
            Figure::P99AckMs,
            "message size",
            &size_names,
            &by_size,
            &at_parts,
        ),
        panel(
            Figure::MaxMbPerS,
            "partitions",
            &part_names,
            &by_parts,
            &at_size,
        ),
        panel(
            Figure::P99AckMs,
            "partitions",
            &part_names,
            &by_parts,
            &at_size,
        ),
    ]
}

/// Sorted distinct values of one field of every point of every run.
fn distinct<T: Ord>(runs: &[Results], field: impl Fn(&crate::report::Point) -> T) -> Vec<T> {
    let mut values: Vec<T> = runs
        .iter()
        .flat_map(|r| r.points.iter().map(&field))
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

fn distinct_in_order<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

impl Panel {
    /// Finite, and positive on a log axis.
    fn can_show(&self, v: f64) -> bool {
        v.is_finite() && (!self.log_y || v > 0.0)
    }
}

/// Every value a panel shows.
fn plotted(panel: &Panel) -> impl Iterator<Item = f64> + '_ {
    panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| panel.can_show(*v))
}

/// A round number at or above the largest value, so the top tick is labelled.
fn linear_top(panel: &Panel) -> f64 {
    let max = plotted(panel).fold(0.0, f64::max);
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf((max / 5.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= max / 5.0)
        .unwrap_or(magnitude * 10.0);
    (max / step).ceil() * step
}

/// Whole powers of ten around every value, at least one decade.
fn log_axis(panel: &Panel) -> Range<f64> {
    let (min, max) = plotted(panel).fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !min.is_finite() {
        return 1.0..10.0;
    }
    let lo = min.max(1e-3).log10().floor() as i32;
    let hi = (max.log10().ceil() as i32).max(lo + 1);
    10f64.powi(lo)..10f64.powi(hi)
}

fn plot<Y>(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Panel, y: Y) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let below_title = area
        .margin(4, 0, 0, 0)
        .titled(&panel.title, font(14.0).style(FontStyle::Bold))?;
    let mut chart = ChartBuilder::on(&below_title)
        .margin_left(8)
        .margin_right(16)
        // Room for the top tick label, which sits half above the plot.
        .margin_top(8)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(Categories(&panel.categories), y)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(FRAME)
        .y_labels(6)
        .y_label_formatter(&|v| tick(*v))
        .label_style(font(11.0))
        .axis_desc_style(font(12.0))
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .draw()?;
    // The mesh draws only the left and bottom axes; a frame closes the plot off from its
    // neighbour.
    let frame = chart.plotting_area().strip_coord_spec();
    let (w, h) = frame.dim_in_pixel();
    frame.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        FRAME,
    ))?;

    for s in &panel.series {
        let points: Vec<(usize, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i, (*v)?)))
            .filter(|(_, v)| panel.can_show(*v))
            .collect();
        let line = s.color.stroke_width(2);
        if s.dashed {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                points.clone(),
                6,
                4,
                line,
            )))?;
        } else {
            chart.draw_series(std::iter::once(PathElement::new(points.clone(), line)))?;
        }
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 3, s.color.filled())),
        )?;
    }
    Ok(())
}

/// An x axis of named categories: category `i` in the middle of the `i`-th equal share of the
/// width, labelled with its name.
struct Categories<'a>(&'a [String]);

impl Ranged for Categories<'_> {
    type FormatOption = NoDefaultFormatting;
    type ValueType = usize;

    fn map(&self, i: &usize, limit: (i32, i32)) -> i32 {
        let share = f64::from(limit.1 - limit.0) / self.0.len().max(1) as f64;
        limit.0 + (share * (*i as f64 + 0.5)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<usize> {
        (0..self.0.len()).collect()
    }

    fn range(&self) -> Range<usize> {
        0..self.0.len()
    }
}

impl ValueFormatter<usize> for Categories<'_> {
    fn format_ext(&self, i: &usize) -> String {
        self.0.get(*i).cloned().unwrap_or_default()
    }
}

/// The chart's font at `px` pixels.
fn font(px: f64) -> FontDesc<'static> {
    (FONT, px * LINE_HEIGHT_PER_PX).into_font()
}

/// `100`, `2.5`, `0.01`: no trailing zeros, and none of a float's rounding noise.
fn tick(v: f64) -> String {
    let fixed = format!("{v:.3}");
    fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, series: &[Series]) -> anyhow::Result<()> {
    let column_w = (PANEL_W * 2 - 40) / LEGEND_COLUMNS as u32;
    let label = TextStyle::from(font(12.0)).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, s) in series.iter().enumerate() {
        let x = 20 + (i % LEGEND_COLUMNS) as i32 * column_w as i32;
        let y = 16 + (i / LEGEND_COLUMNS) as i32 * LEGEND_ROW_H as i32;
        let sample = [(x, y), (x + 30, y)];
        let line = s.color.stroke_width(2);
        if s.dashed {
            area.draw(&DashedPathElement::new(sample, 6, 4, line))?;
        } else {
            area.draw(&PathElement::new(sample, line))?;
        }
        area.draw(&Text::new(s.name.as_str(), (x + 38, y), label.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadResult;
    use crate::report::Point;
    use crate::stats::Percentiles;

    fn point(size: usize, partitions: u32, ack: &str, mb_per_s: f64, p99_ms: f64) -> Point {
        Point {
            size,
            partitions,
            ack: ack.into(),
            max: LoadResult {
                mb_per_s,
                ..LoadResult::default()
            },
            at_load: Some(LoadResult {
                ack: Percentiles {
                    p99_ms: Some(p99_ms),
                    ..Percentiles::default()
                },
                ..LoadResult::default()
            }),
            write_ratio: None,
        }
    }

    fn run(label: &str, points: Vec<Point>) -> Results {
        let mut run = Results {
            label: label.into(),
            points,
            ..Results::default()
        };
        run.settings.latency_load = 0.5;
        run
    }

    #[test]
    fn panels_plot_each_storage_and_ack_mode_against_size_and_partitions() {
        let file = run(
            "file",
            vec![
                point(100, 10, "durable", 20.0, 5.0),
                point(1024, 10, "durable", 80.0, 7.0),
                point(1024, 1000, "durable", 40.0, 900.0),
                point(1024, 10, "buffered", 90.0, 2.0),
            ],
        );
        let s3 = run("s3", vec![point(1024, 10, "durable", 60.0, 30.0)]);
        let [by_size, p99_by_size, by_parts, p99_by_parts] = panels(&[file, s3]);
        assert_eq!(
            by_size.title,
            "Produce MB/s vs message size (10 partitions)"
        );
        assert_eq!(by_size.categories, ["100 B", "1 KiB"]);
        assert_eq!(by_parts.categories, ["10", "1000"]);
        assert_eq!(
            p99_by_parts.title,
            "p99 ack at 50% load vs partitions (1 KiB)"
        );
        assert!(p99_by_size.log_y && !by_size.log_y);
        let names: Vec<&str> = by_size.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["file durable", "file buffered", "s3 durable"]);
        let [file_durable, file_buffered, s3_durable] = &by_parts.series[..] else {
            panic!("three series");
        };
        assert_eq!(file_durable.values, [Some(80.0), Some(40.0)]);
        assert_eq!(file_buffered.values, [Some(90.0), None]);
        assert_eq!(s3_durable.values, [Some(60.0), None]);
        assert_eq!(file_durable.color, s3_durable.color);
        assert!(s3_durable.dashed && !file_durable.dashed);
        assert_eq!(p99_by_parts.series[0].values, [Some(7.0), Some(900.0)]);
    }

    #[test]
    fn axes_end_on_round_numbers_around_the_values() {
        let panel = |values: Vec<Option<f64>>, log_y| Panel {
            title: String::new(),
            x_label: "",
            categories: Vec::new(),
            y_label: "",
            log_y,
            series: vec![Series {
                name: String::new(),
                color: COLORS[0],
                dashed: false,
                values,
            }],
        };
        assert_eq!(linear_top(&panel(vec![Some(61.0), None], false)), 80.0);
        assert_eq!(linear_top(&panel(vec![Some(129.0)], false)), 150.0);
        assert_eq!(linear_top(&panel(vec![], false)), 1.0);
        assert_eq!(
            log_axis(&panel(vec![Some(7.4), Some(3600.0)], true)),
            1.0..10_000.0
        );
        assert_eq!(log_axis(&panel(vec![Some(100.0)], true)), 100.0..1000.0);
        assert_eq!(log_axis(&panel(vec![Some(0.0), None], true)), 1.0..10.0);
    }

    #[test]
    fn the_svg_holds_every_label_and_a_dashed_second_storage() {
        let file = run("file", vec![point(1024, 1, "durable", 50.0, 9.0)]);
        let s3 = run(
            "s3",
            vec![
                point(1024, 1, "durable", 30.0, 20.0),
                point(1024, 10, "durable", 35.0, 25.0),
            ],
        );
        let svg = render(&[file, s3]).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "file durable",
            "s3 durable",
            "1 KiB",
            "partitions",
            "p99 ms (log)",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        // A dashed line is drawn as many short paths: far more than the solid lines need.
        assert!(svg.matches("<polyline").count() > 20);
    }

    #[test]
    fn ticks_print_short() {
        assert_eq!(tick(150.0), "150");
        assert_eq!(tick(10_000.0), "10000");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(0.6000000000000001), "0.6");
        assert_eq!(tick(0.01), "0.01");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn a_run_without_points_still_draws_empty_panels() {
        let svg = render(&[Results::default()]).unwrap();
        assert!(svg.contains("Produce MB/s vs partitions"));
    }
}

//! An SVG chart of one or more runs: produce throughput and p99 ack latency against message
//! size and against partition count, one line per storage and ack mode.

use std::fmt::Write as _;

use crate::report::Results;

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 64.0;
const MARGIN_R: f64 = 16.0;
const MARGIN_T: f64 = 36.0;
const MARGIN_B: f64 = 44.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    /// One value per x category; `None` where the run has no such point.
    values: Vec<Option<f64>>,
}

struct Panel {
    title: String,
    x_label: String,
    categories: Vec<String>,
    y_label: String,
    log_y: bool,
    series: Vec<Series>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Round numbers for a linear axis from 0 to at least `max`.
fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(magnitude * 10.0);
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t < max + step * 0.999 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// Powers of ten covering `min..=max`.
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let lo = min.max(1e-3).log10().floor() as i32;
    let hi = max.max(min * 10.0).log10().ceil() as i32;
    (lo..=hi.max(lo + 1)).map(|e| 10f64.powi(e)).collect()
}

fn fmt_tick(v: f64) -> String {
    if v >= 1.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn draw(out: &mut String, panel: &Panel, x0: f64, y0: f64) {
    let (w, h) = (PANEL_W - MARGIN_L - MARGIN_R, PANEL_H - MARGIN_T - MARGIN_B);
    let (left, top) = (x0 + MARGIN_L, y0 + MARGIN_T);
    let values: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite() && (!panel.log_y || *v > 0.0))
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let ticks = if panel.log_y {
        log_ticks(if min.is_finite() { min } else { 1.0 }, max)
    } else {
        linear_ticks(max)
    };
    let (lo, hi) = (ticks[0], ticks[ticks.len() - 1]);
    let y_of = |v: f64| {
        let f = if panel.log_y {
            (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()).max(1e-9)
        } else {
            (v - lo) / (hi - lo).max(1e-9)
        };
        top + h - f * h
    };
    let n = panel.categories.len().max(1);
    let x_of = |i: usize| left + w * (i as f64 + 0.5) / n as f64;

    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"##,
        left,
        y0 + 20.0,
        escape(&panel.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#999"/>"##
    );
    for t in &ticks {
        let y = y_of(*t);
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left + w,
            left - 6.0,
            y + 4.0,
            fmt_tick(*t)
        );
    }
    for (i, c) in panel.categories.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            x_of(i),
            top + h + 16.0,
            escape(c)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
        left + w / 2.0,
        top + h + 34.0,
        escape(&panel.x_label)
    );
    let _ = writeln!(
        out,
        r##"<text transform="translate({:.1},{:.1}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"##,
        x0 + 16.0,
        top + h / 2.0,
        escape(&panel.y_label)
    );
    for s in &panel.series {
        let points: Vec<(f64, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|v| v.is_finite() && (!panel.log_y || *v > 0.0))
                    .map(|v| (x_of(i), y_of(v)))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"##,
            path.join(" "),
            s.color
        );
        for (x, y) in points {
            let _ = writeln!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"##,
                s.color
            );
        }
    }
}

/// The four panels as one SVG document.
pub fn render(runs: &[Results]) -> anyhow::Result<String> {
    let mut sizes: Vec<usize> = runs
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.size))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut parts: Vec<u32> = runs
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.partitions))
        .collect();
    parts.sort_unstable();
    parts.dedup();
    // The size panels use 10 partitions when measured (the scaling goal's reference), else
    // the smallest count; the partition panels use 1 KiB messages when measured.
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

    let mut keys: Vec<(String, String)> = Vec::new();
    for r in runs {
        for p in &r.points {
            let key = (r.label.clone(), p.ack.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let labels: Vec<String> = {
        let mut l: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
        l.dedup();
        l
    };
    let series = |pick: &dyn Fn(&Results, &str, usize) -> Option<f64>, xs: usize| -> Vec<Series> {
        keys.iter()
            .enumerate()
            .map(|(i, (label, ack))| {
                let run = runs.iter().find(|r| &r.label == label);
                Series {
                    name: format!("{label} {ack}"),
                    color: COLORS[["durable", "buffered", "none"]
                        .iter()
                        .position(|a| a == ack)
                        .unwrap_or(i)
                        % COLORS.len()],
                    dashed: labels.iter().position(|l| l == label).unwrap_or(0) % 2 == 1,
                    values: (0..xs).map(|x| run.and_then(|r| pick(r, ack, x))).collect(),
                }
            })
            .collect()
    };
    let latency_load = runs.first().map_or(0.5, |r| r.settings.latency_load) * 100.0;
    let panels = [
        Panel {
            title: format!("Produce MB/s vs message size ({size_parts} partitions)"),
            x_label: "message size".into(),
            categories: sizes.iter().map(|s| size_label(*s)).collect(),
            y_label: "MB/s (max)".into(),
            log_y: false,
            series: series(
                &|r, ack, x| r.point(sizes[x], size_parts, ack).map(|p| p.max.mb_per_s),
                sizes.len(),
            ),
        },
        Panel {
            title: format!(
                "p99 ack at {latency_load:.0}% load vs message size ({size_parts} partitions)"
            ),
            x_label: "message size".into(),
            categories: sizes.iter().map(|s| size_label(*s)).collect(),
            y_label: "p99 ms (log)".into(),
            log_y: true,
            series: series(
                &|r, ack, x| {
                    r.point(sizes[x], size_parts, ack)
                        .and_then(|p| p.at_load.as_ref()?.ack.p99_ms)
                },
                sizes.len(),
            ),
        },
        Panel {
            title: format!("Produce MB/s vs partitions ({})", size_label(part_size)),
            x_label: "partitions".into(),
            categories: parts.iter().map(ToString::to_string).collect(),
            y_label: "MB/s (max)".into(),
            log_y: false,
            series: series(
                &|r, ack, x| r.point(part_size, parts[x], ack).map(|p| p.max.mb_per_s),
                parts.len(),
            ),
        },
        Panel {
            title: format!(
                "p99 ack at {latency_load:.0}% load vs partitions ({})",
                size_label(part_size)
            ),
            x_label: "partitions".into(),
            categories: parts.iter().map(ToString::to_string).collect(),
            y_label: "p99 ms (log)".into(),
            log_y: true,
            series: series(
                &|r, ack, x| {
                    r.point(part_size, parts[x], ack)
                        .and_then(|p| p.at_load.as_ref()?.ack.p99_ms)
                },
                parts.len(),
            ),
        },
    ];

    let legend_h = 24.0 + 18.0 * keys.len().div_ceil(3) as f64;
    let (width, height) = (PANEL_W * 2.0, PANEL_H * 2.0 + legend_h);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="white"/>"##);
    for (i, panel) in panels.iter().enumerate() {
        draw(
            &mut out,
            panel,
            PANEL_W * (i % 2) as f64,
            PANEL_H * (i / 2) as f64,
        );
    }
    let legend: Vec<&Series> = panels[0].series.iter().collect();
    for (i, s) in legend.iter().enumerate() {
        let x = 20.0 + (i % 3) as f64 * 300.0;
        let y = PANEL_H * 2.0 + 16.0 + (i / 3) as f64 * 18.0;
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            x + 30.0,
            s.color,
            x + 38.0,
            y + 4.0,
            escape(&s.name)
        );
    }
    let _ = writeln!(out, "</svg>");
    Ok(out)
}

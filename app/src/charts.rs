//! Charts, drawn by plotters into SVG markup that the page inlines.

use plotters::chart::MeshStyle;
use plotters::prelude::*;
pub use plotters::style::RGBColor;

/// Bar colours of FP16, INT8 and INT4 (the same as their badges in the chat).
pub const PRECISION_COLORS: [RGBColor; 3] = [RGBColor(0x7a, 0xa2, 0xff), RGBColor(0x4c, 0xc3, 0x8a), RGBColor(0xf2, 0xb8, 0x4b)];
/// Bar colour of a mixed plan.
const MIXED: RGBColor = RGBColor(0xc0, 0x84, 0xfc);

/// Bar colour of a variant with a quantized KV cache.
const KV: RGBColor = RGBColor(0x5e, 0xd0, 0xd8);

/// The colour of a variant by its code (`fp16`, `int8`, `int4`, a mix, or `…+kv-…`).
pub fn plan_color(code: &str) -> RGBColor {
    if code.contains("+kv-") {
        return KV;
    }
    match code {
        "fp16" => PRECISION_COLORS[0],
        "int8" => PRECISION_COLORS[1],
        "int4" => PRECISION_COLORS[2],
        _ => MIXED,
    }
}

const TEXT: RGBColor = RGBColor(0xe6, 0xe8, 0xee);
const GRID: RGBColor = RGBColor(0x26, 0x2b, 0x36);

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The SVG document `draw` writes, or a note saying why there is no chart.
fn svg(draw: impl FnOnce(&mut String) -> Drawn) -> String {
    let mut svg = String::new();
    match draw(&mut svg) {
        Ok(()) => svg,
        Err(e) => format!("<p class=\"hint\">chart unavailable: {e}</p>"),
    }
}

/// The dark grid and axis labels every chart with a mesh shares.
fn dark<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(m: &'m mut MeshStyle<'a, 'b, X, Y, DB>) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    m.disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
}

/// A bar chart of `values` (one bar per label) as an SVG document.
pub fn bars(title: &str, labels: &[&str], values: &[f64], colors: &[RGBColor]) -> String {
    svg(|svg| draw_bars(svg, title, labels, values, colors))
}

fn draw_bars(
    svg: &mut String,
    title: &str,
    labels: &[&str],
    values: &[f64],
    colors: &[RGBColor],
) -> Drawn {
    let root = SVGBackend::with_string(svg, (300, 200)).into_drawing_area();
    let top = values.iter().cloned().fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(48)
        // A segmented range `0..n` has n + 1 slots: `0..n - 1` gives one per bar.
        .build_cartesian_2d((0..labels.len().saturating_sub(1)).into_segmented(), 0f64..top)?;
    dark(&mut chart.configure_mesh())
        .y_labels(4)
        .y_label_formatter(&|v| if top < 0.1 { format!("{v:.3}") } else { format!("{v:.1}") })
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i).map_or(String::new(), |l| l.to_string()),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .margin(14)
            .style_func(|x, _| match x {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => colors.get(*i).copied().unwrap_or(TEXT).filled(),
                SegmentValue::Last => TEXT.filled(),
            })
            .data(values.iter().enumerate().map(|(i, &v)| (i, v))),
    )?;
    root.present()?;
    Ok(())
}

/// A histogram (`counts` in equal bins over `lo..hi`) as an SVG document.
pub fn histogram(title: &str, lo: f64, hi: f64, counts: &[u64], color: RGBColor) -> String {
    svg(|svg| draw_histogram(svg, title, lo, hi, counts, color))
}

fn draw_histogram(svg: &mut String, title: &str, lo: f64, hi: f64, counts: &[u64], color: RGBColor) -> Drawn {
    let root = SVGBackend::with_string(svg, (320, 200)).into_drawing_area();
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(48)
        .build_cartesian_2d(lo..hi, 0f64..top)?;
    mesh(&mut chart, &|v| short(*v))?;
    let w = (hi - lo) / counts.len().max(1) as f64;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = lo + i as f64 * w;
        Rectangle::new([(x0, 0.0), (x0 + w, c as f64)], color.filled())
    }))?;
    root.present()?;
    Ok(())
}

/// One line per series (`(label, colour, points)`) as an SVG document.
pub fn lines(title: &str, series: &[(String, RGBColor, Vec<(f64, f64)>)]) -> String {
    svg(|svg| draw_lines(svg, title, series))
}

fn draw_lines(svg: &mut String, title: &str, series: &[(String, RGBColor, Vec<(f64, f64)>)]) -> Drawn {
    let root = SVGBackend::with_string(svg, (420, 220)).into_drawing_area();
    let pts = series.iter().flat_map(|s| s.2.iter());
    let x_hi = pts.clone().map(|p| p.0).fold(1.0f64, f64::max);
    let y_hi = pts.map(|p| p.1).fold(0.0f64, f64::max);
    let y_hi = if y_hi > 0.0 { y_hi * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..x_hi, 0f64..y_hi)?;
    mesh(&mut chart, &|v| format!("{v:.0}"))?;
    for (label, color, points) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 12).into_font().color(&TEXT))
        .border_style(GRID)
        .background_style(RGBColor(0x14, 0x17, 0x1f))
        .draw()?;
    root.present()?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// The grid and axis labels every continuous chart shares.
fn mesh(chart: &mut Chart, x_fmt: &dyn Fn(&f64) -> String) -> Drawn {
    dark(&mut chart.configure_mesh())
        .x_labels(5)
        .y_labels(4)
        .x_label_formatter(x_fmt)
        .y_label_formatter(&|v| short(*v))
        .draw()?;
    Ok(())
}

/// A compact axis number: 0.012, 1.5e-4, 35k.
fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 1e-2 {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    }
}

/// A heatmap: one row per series, one cell per column, coloured by value on a log scale (the
/// legend gives the range).
pub fn heatmap(title: &str, rows: &[(String, Vec<f64>)]) -> String {
    svg(|svg| draw_heatmap(svg, title, rows))
}

fn draw_heatmap(svg: &mut String, title: &str, rows: &[(String, Vec<f64>)]) -> Drawn {
    let cols = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(1);
    let root = SVGBackend::with_string(svg, (640, 60 + 34 * rows.len().max(1) as u32)).into_drawing_area();
    let vals = rows.iter().flat_map(|r| r.1.iter().copied()).filter(|v| *v > 0.0);
    let lo = vals.clone().fold(f64::INFINITY, f64::min).max(1e-9);
    let hi = vals.fold(0f64, f64::max).max(lo * 1.0001);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title} · {} … {}", short(lo), short(hi)), ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..cols as f64, 0f64..rows.len().max(1) as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(GRID)
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
        .x_labels(cols.min(10))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(rows.len().max(1) * 2 + 1)
        .y_label_formatter(&|v| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 0.01 { rows.get(rows.len() - 1 - i).map_or(String::new(), |r| r.0.clone()) } else { String::new() }
        })
        .draw()?;
    let n = rows.len();
    chart.draw_series(rows.iter().enumerate().flat_map(|(ri, (_, vs))| {
        vs.iter().enumerate().map(move |(ci, &v)| {
            let t = if v > 0.0 { ((v.max(lo)).ln() - lo.ln()) / (hi.ln() - lo.ln()) } else { 0.0 };
            let y = (n - 1 - ri) as f64;
            Rectangle::new([(ci as f64, y), (ci as f64 + 0.95, y + 0.9)], ramp(t).filled())
        })
    }))?;
    root.present()?;
    Ok(())
}

/// Dark blue (0) through teal to yellow (1).
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8, u: f64| (a as f64 + (b as f64 - a as f64) * u).round() as u8;
    let (a, b, u) = if t < 0.5 { ((0x1b, 0x2a, 0x5c), (0x2a, 0xa1, 0x98), t * 2.0) } else { ((0x2a, 0xa1, 0x98), (0xf2, 0xd8, 0x4b), t * 2.0 - 1.0) };
    RGBColor(lerp(a.0, b.0, u), lerp(a.1, b.1, u), lerp(a.2, b.2, u))
}

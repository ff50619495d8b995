//! Charts, drawn by plotters into SVG markup that the page inlines.

use lowbit::plan::Variant;
use lowbit::{KvPrecision, Precision};
use plotters::chart::MeshStyle;
use plotters::prelude::*;
pub use plotters::style::RGBColor;
pub use ticks::ticks;

mod ticks;

/// Bar colours of FP16, INT8 and INT4 (the same as their badges in the chat).
pub const PRECISION_COLORS: [RGBColor; 5] = [
    RGBColor(0x7a, 0xa2, 0xff),
    RGBColor(0x4c, 0xc3, 0x8a),
    RGBColor(0xf2, 0xb8, 0x4b),
    RGBColor(0xf0, 0x7f, 0x5a),
    RGBColor(0xe0, 0x5a, 0x8a),
];
/// Bar colour of a mixed plan.
const MIXED: RGBColor = RGBColor(0xc0, 0x84, 0xfc);

/// Bar colour of a variant with a quantized KV cache.
const KV: RGBColor = RGBColor(0x5e, 0xd0, 0xd8);

/// The colour of a variant: FP16, INT8 and INT4 their own, a mix one colour, a quantized KV cache
/// another.
pub fn plan_color(v: &Variant) -> RGBColor {
    if v.kv != KvPrecision::F32 {
        return KV;
    }
    match v.plan.uniform_precision() {
        Some(Precision::Fp16) => PRECISION_COLORS[0],
        Some(Precision::Int8) => PRECISION_COLORS[1],
        Some(Precision::Int4) => PRECISION_COLORS[2],
        Some(Precision::Int3) => PRECISION_COLORS[3],
        Some(Precision::Int2) => PRECISION_COLORS[4],
        None => MIXED,
    }
}

const TEXT: RGBColor = RGBColor(0xe6, 0xe8, 0xee);
const GRID: RGBColor = RGBColor(0x26, 0x2b, 0x36);

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The SVG document `draw` writes, as an image with `title` as its accessible name (the page
/// scales it down to narrow panels), or a note saying why there is no chart.
fn svg(title: &str, draw: impl FnOnce(&mut String) -> Drawn) -> String {
    let mut svg = String::new();
    match draw(&mut svg) {
        Ok(()) => svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(title)), 1),
        Err(e) => format!("<p class=\"hint\">chart unavailable: {}</p>", escape(&e.to_string())),
    }
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `#rrggbb` of a colour.
fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The dark grid and axis labels every chart with a mesh shares.
fn dark<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(m: &'m mut MeshStyle<'a, 'b, X, Y, DB>) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    m.disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
}

/// The first `n - 1` of `items` (largest first) and the rest summed as one "other (k …)" item,
/// so that one large item does not hide all the small ones in a chart. `items` as they are when
/// they number `n` or fewer.
pub fn top_n(items: &[(String, f64)], n: usize, what: &str) -> Vec<(String, f64)> {
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    if sorted.len() <= n || n < 2 {
        return sorted;
    }
    let rest = sorted.split_off(n - 1);
    sorted.push((format!("other ({} {what})", rest.len()), rest.iter().map(|r| r.1).sum()));
    sorted
}

/// A bar chart of `values` (one bar per label) as an SVG document `width` pixels wide.
pub fn bars(title: &str, labels: &[&str], values: &[f64], colors: &[RGBColor], width: u32) -> String {
    svg(title, |svg| draw_bars(svg, title, labels, values, colors, width))
}

fn draw_bars(svg: &mut String, title: &str, labels: &[&str], values: &[f64], colors: &[RGBColor], width: u32) -> Drawn {
    let root = SVGBackend::with_string(svg, (width, 220)).into_drawing_area();
    let top = values.iter().cloned().fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let y_fmt = ticks(0.0, top, 4);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(52)
        // A segmented range `0..n` has n + 1 slots: `0..n - 1` gives one per bar.
        .build_cartesian_2d((0..labels.len().saturating_sub(1)).into_segmented(), 0f64..top)?;
    dark(&mut chart.configure_mesh())
        .y_labels(4)
        .y_label_formatter(&y_fmt)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i).map_or(String::new(), |l| l.to_string()),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .margin((width / labels.len().max(1) as u32 / 5).clamp(6, 60))
            .style_func(|x, _| match x {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => colors.get(*i).copied().unwrap_or(TEXT).filled(),
                SegmentValue::Last => TEXT.filled(),
            })
            .data(values.iter().enumerate().map(|(i, &v)| (i, v))),
    )?;
    root.present()?;
    Ok(())
}

/// Horizontal bars, one row per `(label, value)` in the order given, each labelled at its end
/// with `value_label(value)`: for long labels (kernel names) and shares of a whole.
pub fn hbars(title: &str, rows: &[(String, f64)], color: RGBColor, value_label: &dyn Fn(f64) -> String, width: u32) -> String {
    svg(title, |svg| draw_hbars(svg, title, rows, color, value_label, width))
}

fn draw_hbars(svg: &mut String, title: &str, rows: &[(String, f64)], color: RGBColor, value_label: &dyn Fn(f64) -> String, width: u32) -> Drawn {
    let n = rows.len().max(1);
    let root = SVGBackend::with_string(svg, (width, 56 + 28 * n as u32)).into_drawing_area();
    let label_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(4).clamp(4, 36) as u32 * 7 + 8;
    let label_width = label_width.min(width / 2);
    // Room on the right of the longest bar for its value label (about 7 px a character).
    let max = rows.iter().map(|r| r.1).fold(0.0f64, f64::max);
    let plot = width.saturating_sub(label_width + 16).max(1) as f64;
    let value_px = rows.iter().map(|r| value_label(r.1).chars().count()).max().unwrap_or(0) as f64 * 7.0 + 12.0;
    let top = if max > 0.0 { max / (1.0 - (value_px / plot).min(0.6)) } else { 1.0 };
    let x_fmt = ticks(0.0, top, 5);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0f64..top, 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
        .x_labels(5)
        .x_label_formatter(&x_fmt)
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 0.01 { rows.get(n - 1 - i).map_or(String::new(), |r| r.0.clone()) } else { String::new() }
        })
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let y = (n - 1 - i) as f64;
        Rectangle::new([(0.0, y + 0.18), (r.1, y + 0.82)], color.filled())
    }))?;
    let font = ("sans-serif", 12).into_font().color(&TEXT).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| Text::new(format!(" {}", value_label(r.1)), (r.1, (n - 1 - i) as f64 + 0.5), font.clone())))?;
    root.present()?;
    Ok(())
}

/// A histogram (`counts` in equal bins over `lo..hi`) as an SVG document.
pub fn histogram(title: &str, lo: f64, hi: f64, counts: &[u64], color: RGBColor, width: u32) -> String {
    svg(title, |svg| draw_histogram(svg, title, lo, hi, counts, color, width))
}

fn draw_histogram(svg: &mut String, title: &str, lo: f64, hi: f64, counts: &[u64], color: RGBColor, width: u32) -> Drawn {
    let root = SVGBackend::with_string(svg, (width, 210)).into_drawing_area();
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(48)
        .build_cartesian_2d(lo..hi, 0f64..top)?;
    mesh(&mut chart, (lo, hi), top, None)?;
    let w = (hi - lo) / counts.len().max(1) as f64;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = lo + i as f64 * w;
        Rectangle::new([(x0, 0.0), (x0 + w, c as f64)], color.filled())
    }))?;
    root.present()?;
    Ok(())
}

/// One line per series (`(label, colour, points)`) as an SVG document, and its legend below it
/// as HTML (a legend inside the plot covers the lines it names).
pub fn lines(title: &str, series: &[(String, RGBColor, Vec<(f64, f64)>)], width: u32) -> String {
    lines_over(title, "position in the text (tokens)", series, width)
}

/// [`lines`] over an x axis named `x_desc`.
pub fn lines_over(title: &str, x_desc: &str, series: &[(String, RGBColor, Vec<(f64, f64)>)], width: u32) -> String {
    let chart = svg(title, |svg| draw_lines(svg, title, x_desc, series, width));
    let legend: String = series
        .iter()
        .map(|(label, color, _)| format!("<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>", hex(*color), escape(label)))
        .collect();
    format!("{chart}<ul class=\"legend\">{legend}</ul>")
}

fn draw_lines(svg: &mut String, title: &str, x_desc: &str, series: &[(String, RGBColor, Vec<(f64, f64)>)], width: u32) -> Drawn {
    let root = SVGBackend::with_string(svg, (width, 230)).into_drawing_area();
    let pts = series.iter().flat_map(|s| s.2.iter());
    let x_hi = pts.clone().map(|p| p.0).fold(1.0f64, f64::max);
    let y_hi = pts.map(|p| p.1).fold(0.0f64, f64::max);
    let y_hi = if y_hi > 0.0 { y_hi * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..x_hi, 0f64..y_hi)?;
    mesh(&mut chart, (0.0, x_hi), y_hi, Some(x_desc))?;
    for (_, color, points) in series {
        chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

/// A number in a caption: 0.012, 1.5e-4, 35k.
fn compact(v: f64) -> String {
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

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// The grid and axis labels every continuous chart shares (y from 0 to `y_hi`), with the x axis
/// named when `x_desc` is given.
fn mesh(chart: &mut Chart, (x_lo, x_hi): (f64, f64), y_hi: f64, x_desc: Option<&str>) -> Drawn {
    let (x_fmt, y_fmt) = (ticks(x_lo, x_hi, 5), ticks(0.0, y_hi, 4));
    let mut m = chart.configure_mesh();
    dark(&mut m).x_labels(5).y_labels(4).x_label_formatter(&x_fmt).y_label_formatter(&y_fmt);
    if let Some(d) = x_desc {
        m.x_desc(d).axis_desc_style(("sans-serif", 12).into_font().color(&TEXT));
    }
    m.draw()?;
    Ok(())
}

/// A heatmap: one row per series, one cell per column, coloured by value on a log scale (the
/// legend gives the range).
pub fn heatmap(title: &str, rows: &[(String, Vec<f64>)], width: u32) -> String {
    let chart = svg(title, |svg| draw_heatmap(svg, title, rows, width));
    let (lo, hi) = heat_range(rows);
    let stops = [0.0, 0.25, 0.5, 0.75, 1.0].map(|t| hex(ramp(t))).join(", ");
    format!(
        "{chart}<p class=\"legend heat-scale\" data-testid=\"heat-scale\"><span>{}</span>\
         <span class=\"ramp\" style=\"background:linear-gradient(to right, {stops})\"></span><span>{}</span>\
         <span class=\"hint\">(logarithmic: each step to the right multiplies the error)</span></p>",
        compact(lo),
        compact(hi)
    )
}

/// The smallest and largest positive value of a heatmap: the ends of its colour scale.
fn heat_range(rows: &[(String, Vec<f64>)]) -> (f64, f64) {
    let vals = rows.iter().flat_map(|r| r.1.iter().copied()).filter(|v| *v > 0.0);
    let lo = vals.clone().fold(f64::INFINITY, f64::min).max(1e-9);
    let hi = vals.fold(0f64, f64::max).max(lo * 1.0001);
    (lo, hi)
}

fn draw_heatmap(svg: &mut String, title: &str, rows: &[(String, Vec<f64>)], width: u32) -> Drawn {
    let cols = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(1);
    let root = SVGBackend::with_string(svg, (width, 60 + 34 * rows.len().max(1) as u32)).into_drawing_area();
    let (lo, hi) = heat_range(rows);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 14).into_font().color(&TEXT))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..cols as f64, 0f64..rows.len().max(1) as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(GRID)
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
        // Layer numbers under the middle of their cells (every one up to 16 layers, then every few).
        .x_labels(cols * 2 + 1)
        .x_label_formatter(&|v| {
            let i = v.floor() as usize;
            let every = cols.div_ceil(16);
            if (v - i as f64 - 0.5).abs() < 0.01 && i % every == 0 { i.to_string() } else { String::new() }
        })
        .x_desc("layer")
        .axis_desc_style(("sans-serif", 12).into_font().color(&TEXT))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_large_item_leaves_room_for_the_rest() {
        let items: Vec<(String, f64)> = [("a", 1.0), ("b", 38.9), ("c", 3.6), ("d", 0.5), ("e", 0.2)].iter().map(|(l, v)| (l.to_string(), *v)).collect();
        let top = top_n(&items, 3, "kernels");
        assert_eq!(top.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["b", "c", "other (3 kernels)"]);
        assert!((top[2].1 - 1.7).abs() < 1e-12);
        assert_eq!(top_n(&items, 5, "kernels").len(), 5);
    }

    #[test]
    fn a_heatmap_has_its_colour_scale() {
        let h = heatmap("error", &[("INT4".into(), vec![0.01, 0.1]), ("INT8".into(), vec![0.001, 0.0])], 500);
        let scale = &h[h.find("<p class=\"legend heat-scale\"").expect("a scale after the chart")..];
        assert!(scale.contains("<span>1.0e-3</span>") && scale.contains("<span>0.100</span>"), "{scale}");
        assert!(scale.contains(&format!("linear-gradient(to right, {}", hex(ramp(0.0)))), "{scale}");
    }

    #[test]
    fn charts_are_named_images_and_legends_are_html() {
        let s = lines("KL <vs> FP16", &[("INT4".into(), PRECISION_COLORS[2], vec![(0.0, 0.1), (1.0, 0.2)])], 400);
        assert!(s.starts_with("<svg role=\"img\" aria-label=\"KL &lt;vs&gt; FP16\" "), "{}", &s[..80]);
        assert!(s.contains("<ul class=\"legend\"><li><span class=\"swatch\" style=\"background:#f2b84b\"></span>INT4</li></ul>"));
        let h = hbars("ms", &[("matvec".into(), 38.9), ("argmax".into(), 3.6)], MIXED, &|v| format!("{v:.1} ms"), 600);
        assert!(h.contains("38.9 ms") && h.contains("matvec") && h.contains("width=\"600\""));
    }
}

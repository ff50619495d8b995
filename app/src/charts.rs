//! Charts, drawn by plotters into SVG markup that the page inlines.

use plotters::prelude::*;

/// Bar colours of FP16, INT8 and INT4 (the same as their badges in the chat).
pub const PRECISION_COLORS: [RGBColor; 3] = [RGBColor(0x7a, 0xa2, 0xff), RGBColor(0x4c, 0xc3, 0x8a), RGBColor(0xf2, 0xb8, 0x4b)];
/// Bar colour of a mixed plan.
const MIXED: RGBColor = RGBColor(0xc0, 0x84, 0xfc);

/// The colour of a plan by its code (`fp16`, `int8`, `int4`, or a mix).
pub fn plan_color(code: &str) -> RGBColor {
    match code {
        "fp16" => PRECISION_COLORS[0],
        "int8" => PRECISION_COLORS[1],
        "int4" => PRECISION_COLORS[2],
        _ => MIXED,
    }
}

const TEXT: RGBColor = RGBColor(0xe6, 0xe8, 0xee);
const GRID: RGBColor = RGBColor(0x26, 0x2b, 0x36);

/// A bar chart of `values` (one bar per label) as an SVG document.
pub fn bars(title: &str, labels: &[&str], values: &[f64], colors: &[RGBColor]) -> String {
    let mut svg = String::new();
    if let Err(e) = draw_bars(&mut svg, title, labels, values, colors) {
        return format!("<p class=\"hint\">chart unavailable: {e}</p>");
    }
    svg
}

fn draw_bars(
    svg: &mut String,
    title: &str,
    labels: &[&str],
    values: &[f64],
    colors: &[RGBColor],
) -> Result<(), Box<dyn std::error::Error>> {
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
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(GRID)
        .label_style(("sans-serif", 12).into_font().color(&TEXT))
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

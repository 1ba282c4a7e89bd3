//! SVG charts for the reports: horizontal bars, one group per category (a variant, a traffic
//! class, a list size) and one bar per series in it, each bar annotated. plotters with its SVG
//! backend only: text goes into the SVG as text, the viewer's sans-serif font draws it.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// One category: a value per series (NaN: no bar), a note after each bar, and optionally the
/// range each value comes from (drawn as a thin line across the bar's end).
pub struct Group {
    pub label: String,
    pub values: Vec<f64>,
    pub notes: Vec<String>,
    pub ranges: Vec<Option<(f64, f64)>>,
}

const COLORS: [RGBColor; 4] = [RGBColor(0x2b, 0x6c, 0xb0), RGBColor(0xdd, 0x84, 0x52), RGBColor(0x55, 0xa8, 0x68), RGBColor(0x8c, 0x8c, 0x8c)];
const BAR: f64 = 18.0;
const GAP: f64 = 10.0;

/// Writes a horizontal bar chart to `path`. `highlight`: the group drawn in the first colour
/// whatever its series (for one-series charts that single out one category, e.g. the blocker).
pub fn hbars(path: &Path, title: &str, x_desc: &str, series: &[&str], groups: &[Group], highlight: Option<usize>) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let per_group = series.len() as f64 * BAR + GAP;
    // Room below the last group for the legend, so that it covers no bar.
    let legend = if series.len() > 1 { 20.0 * series.len() as f64 + 16.0 } else { 0.0 };
    let height = (110.0 + groups.len() as f64 * per_group + legend) as u32;
    let label_w = groups.iter().map(|g| g.label.len()).max().unwrap_or(10) as u32 * 7 + 20;
    let max = groups
        .iter()
        .flat_map(|g| g.values.iter().copied().chain(g.ranges.iter().flatten().map(|r| r.1)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let span = groups.len() as f64 * per_group + legend;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0.0..max * 1.4, 0.0..span)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(x_desc)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|e| err(&e))?;
    // Groups top to bottom: y grows upwards, so the first group sits at the top.
    let top = |gi: usize| span - gi as f64 * per_group - GAP / 2.0;
    for (si, name) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let bars = groups.iter().enumerate().filter(|(_, g)| g.values.get(si).is_some_and(|v| v.is_finite())).map(move |(gi, g)| {
            let y1 = top(gi) - si as f64 * BAR;
            let c = if highlight.is_some_and(|h| h != gi) { COLORS[3] } else { color };
            Rectangle::new([(0.0, y1 - BAR + 2.0), (g.values[si], y1)], c.filled())
        });
        let drawn = chart.draw_series(bars).map_err(|e| err(&e))?;
        if series.len() > 1 {
            drawn.label(*name).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
        let notes = groups.iter().enumerate().filter(|(_, g)| g.values.get(si).is_some_and(|v| v.is_finite())).map(move |(gi, g)| {
            let y = top(gi) - si as f64 * BAR - BAR / 2.0 + 1.0;
            let note = g.notes.get(si).cloned().unwrap_or_default();
            // After the bar, or after its range line where that reaches further.
            let end = g.ranges.get(si).copied().flatten().map_or(g.values[si], |r| r.1.max(g.values[si]));
            Text::new(note, (end + max * 0.01, y), TextStyle::from(("sans-serif", 12).into_font()).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )))
        });
        chart.draw_series(notes).map_err(|e| err(&e))?;
        let ranges = groups.iter().enumerate().filter_map(move |(gi, g)| {
            let (lo, hi) = g.ranges.get(si).copied().flatten()?;
            let y = top(gi) - si as f64 * BAR - BAR / 2.0 + 1.0;
            Some(PathElement::new(vec![(lo, y), (hi, y)], BLACK.stroke_width(1)))
        });
        chart.draw_series(ranges).map_err(|e| err(&e))?;
    }
    if series.len() > 1 {
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.9)).border_style(BLACK).label_font(("sans-serif", 12)).draw().map_err(|e| err(&e))?;
    }
    // Category labels, right-aligned left of the axis.
    for (gi, g) in groups.iter().enumerate() {
        let y = top(gi) - series.len() as f64 * BAR / 2.0 + 1.0;
        let (px, py) = chart.backend_coord(&(0.0, y));
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        ));
        root.draw(&Text::new(g.label.clone(), (px - 8, py), style)).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

//! The training curves as a PNG: loss (top) and accuracy (bottom) per epoch, train and
//! validation, drawn with plotters' bitmap backend.
//!
//! NOTE: plotters renders text only with its `ttf` feature (font-kit, which needs fontconfig
//! and system fonts) or `ab_glyph` (which needs a font file shipped with us), so the chart has
//! no text at all: the legend is the colours (blue = train, orange = validation; solid lines),
//! the accuracy panel's grey lines are 50 %, 75 % and 100 %, and the numbers are in
//! `metrics.json`. The loss panel is scaled to its data, with a grey line at ln 2, the loss of
//! a model that cannot tell edits apart.

use std::path::Path;

use cutscore_reward::checkpoint::EpochMetrics;
use plotters::prelude::*;

/// Train curve colour.
const TRAIN: RGBColor = RGBColor(31, 119, 180);
/// Validation curve colour.
const VALIDATION: RGBColor = RGBColor(255, 127, 14);
const GUIDE: RGBColor = RGBColor(200, 200, 200);

/// Draws the curves of `epochs` into a `width` x `height` PNG at `path`.
pub fn draw(path: &Path, epochs: &[EpochMetrics], width: u32, height: u32) -> anyhow::Result<()> {
    anyhow::ensure!(!epochs.is_empty(), "no epochs to draw");
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(height / 2);
    let x_end = epochs.len().max(2) as f64;
    let losses = epochs.iter().flat_map(|e| [e.train_loss, e.val_loss]);
    let (low, high) = losses.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let ln2 = std::f32::consts::LN_2;
    let (low, high) = (low.min(ln2) as f64, high.max(ln2) as f64);
    let pad = ((high - low) * 0.05).max(1e-3);
    panel(
        &top,
        epochs,
        (low - pad)..(high + pad),
        x_end,
        &[ln2 as f64],
        |e| (e.train_loss, e.val_loss),
    )?;
    panel(&bottom, epochs, 0.4..1.02, x_end, &[0.5, 0.75, 1.0], |e| {
        (e.train_accuracy, e.val_accuracy)
    })?;
    root.present()?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    epochs: &[EpochMetrics],
    y: std::ops::Range<f64>,
    x_end: f64,
    guides: &[f64],
    value: impl Fn(&EpochMetrics) -> (f32, f32),
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .build_cartesian_2d(1.0..x_end, y)?;
    for &g in guides {
        chart.draw_series(LineSeries::new([(1.0, g), (x_end, g)], GUIDE))?;
    }
    let frame = [
        (1.0, chart.y_range().start),
        (x_end, chart.y_range().start),
        (x_end, chart.y_range().end),
        (1.0, chart.y_range().end),
        (1.0, chart.y_range().start),
    ];
    chart.draw_series(LineSeries::new(frame, BLACK))?;
    let points = |pick: fn((f32, f32)) -> f32| {
        epochs
            .iter()
            .map(|e| (e.epoch as f64, f64::from(pick(value(e)))))
            .collect::<Vec<_>>()
    };
    chart.draw_series(LineSeries::new(points(|v| v.0), TRAIN.stroke_width(2)))?;
    chart.draw_series(LineSeries::new(points(|v| v.1), VALIDATION.stroke_width(2)))?;
    chart.draw_series(
        points(|v| v.1)
            .into_iter()
            .map(|p| Circle::new(p, 3, VALIDATION.filled())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_without_fonts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let epochs: Vec<EpochMetrics> = (1..=5)
            .map(|epoch| EpochMetrics {
                epoch,
                train_loss: 0.7 - 0.05 * epoch as f32,
                train_accuracy: 0.5 + 0.08 * epoch as f32,
                val_loss: 0.69 - 0.03 * epoch as f32,
                val_accuracy: 0.5 + 0.05 * epoch as f32,
            })
            .collect();
        draw(&path, &epochs, 320, 240).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Both curve colours were drawn.
        let image = image_pixels(&bytes);
        assert!(image.contains(&[31, 119, 180]) && image.contains(&[255, 127, 14]));
    }

    fn image_pixels(png: &[u8]) -> Vec<[u8; 3]> {
        let decoder = image::load_from_memory(png).unwrap().to_rgb8();
        decoder.pixels().map(|p| p.0).collect()
    }
}

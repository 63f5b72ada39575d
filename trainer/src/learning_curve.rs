//! `trainer finetune --curve`: agreement on the held-out songs against the number of decisions
//! learned from, as a PNG with labelled axes (plotters, text in Ubuntu Light from
//! `epaint_default_fonts`, the font egui ships).

use std::path::Path;
use std::sync::OnceLock;

use cutscore_training::finetune::CurvePoint;
use plotters::prelude::*;

const LINE: RGBColor = RGBColor(31, 119, 180);
const GUIDE: RGBColor = RGBColor(200, 200, 200);
/// The family name the embedded font is registered under.
const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters, once per process.
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .is_ok()
    });
    anyhow::ensure!(ok, "the embedded chart font could not be read");
    Ok(())
}

/// Draws `points` (agreement against decisions) with the agreement before learning as a grey
/// line, into a `width` x `height` PNG at `path`.
pub fn draw(
    path: &Path,
    points: &[CurvePoint],
    before: Option<f32>,
    width: u32,
    height: u32,
) -> anyhow::Result<()> {
    anyhow::ensure!(!points.is_empty(), "no curve points to draw");
    register_font()?;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_end = points.iter().map(|p| p.decisions).max().unwrap_or(1).max(1) as f64 * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Agreement with you on songs you did not decide on",
            (FONT, 20),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_end, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("decisions learned from")
        .y_desc("agreement (%)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .draw()?;
    if let Some(before) = before {
        let y = f64::from(before) * 100.0;
        chart
            .draw_series(LineSeries::new(
                [(0.0, y), (x_end, y)],
                GUIDE.stroke_width(2),
            ))?
            .label("before learning")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GUIDE.stroke_width(2)));
    }
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.decisions as f64, f64::from(p.agreement) * 100.0))
        .collect();
    chart
        .draw_series(LineSeries::new(xy.clone(), LINE.stroke_width(2)))?
        .label("after learning")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], LINE.stroke_width(2)));
    chart.draw_series(xy.iter().map(|&p| Circle::new(p, 4, LINE.filled())))?;
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(GUIDE)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_drawn_with_text_and_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.png");
        let points = [
            CurvePoint {
                songs: 1,
                decisions: 10,
                agreement: 0.6,
            },
            CurvePoint {
                songs: 5,
                decisions: 50,
                agreement: 0.8,
            },
            CurvePoint {
                songs: 10,
                decisions: 100,
                agreement: 0.9,
            },
        ];
        draw(&path, &points, Some(0.5), 640, 400).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        let count = |f: &dyn Fn(&image::Rgb<u8>) -> bool| image.pixels().filter(|p| f(p)).count();
        // The line's blue, and dark text (caption, axis labels) are both there.
        assert!(count(&|p| p.0 == [31, 119, 180]) > 300);
        assert!(count(&|p| p.0.iter().all(|&c| c < 90)) > 500);
        assert!(draw(&path, &[], None, 640, 400).is_err());
    }
}

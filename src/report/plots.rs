//! Plots of a fit, as SVG: the ELBO trace (`elbo.svg`), a forest plot of every latent's
//! posterior mean and 90% interval (`posterior.svg`), and the marginal densities of the first
//! scalars (`densities.svg`).
//!
//! Draws with `plotters` and reads only a fit's output; it computes no posterior itself.

use plotters::prelude::*;

use crate::graph::Model;
use crate::infer::{index_label, FitOutput, LatentSummary, Method};

/// Elements of one latent in the forest plot (the table and summary.json have the rest).
const FOREST_ROWS: usize = 12;
/// Pixel rows of the forest plot per element, and for a panel's title and axis.
const ROW_PX: u32 = 22;
const PANEL_PX: u32 = 64;
const WIDTH: u32 = 720;

/// The trace of the ELBO per sweep or step, its axes labelled with the unit.
pub fn elbo_svg(model: &Model, out: &FitOutput) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let pts: Vec<(f64, f64)> = out
            .elbo_trace
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_finite())
            .map(|(i, e)| ((i + 1) as f64, *e))
            .collect();
        if !pts.is_empty() {
            // Show the last 95% of the trace's range so the start does not flatten the rest.
            let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
            ys.sort_by(f64::total_cmp);
            let lo = ys[(ys.len() as f64 * 0.05) as usize];
            let hi = ys[ys.len() - 1];
            let pad = ((hi - lo).abs() * 0.05).max(1e-9);
            let (lo, hi) = axis(lo - pad, hi + pad);
            let x_max = pts.last().map_or(1.0, |p| p.0).max(2.0);
            let unit = if out.method == Method::Cavi {
                "sweep"
            } else {
                "step"
            };
            if let Ok(mut chart) = ChartBuilder::on(&root)
                .caption(format!("{} — ELBO per {unit}", model.name), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(80)
                .build_cartesian_2d(1.0..x_max, lo..hi)
            {
                // Steps are counted in whole numbers: `1000`, not `1000.0`.
                let whole = |x: &f64| format!("{}", x.round() as i64);
                let _ = chart
                    .configure_mesh()
                    .x_desc(unit)
                    .x_label_formatter(&whole)
                    .y_desc(match out.rows {
                        Some(n) => format!("ELBO (total over {n} rows)"),
                        None => "ELBO".to_string(),
                    })
                    .light_line_style(WHITE.mix(0.0))
                    .draw();
                let smooth = smoothed(&pts, out.method);
                let raw_style = if smooth.is_some() {
                    BLUE.mix(0.3).stroke_width(1)
                } else {
                    BLUE.stroke_width(2)
                };
                let raw = chart.draw_series(LineSeries::new(
                    pts.iter().copied().filter(|p| p.1 >= lo - pad),
                    raw_style,
                ));
                // Gradient steps are noisy estimates: their moving average over the window the
                // reported ELBO averages (so it ends at that ELBO) shows where the fit went.
                if let (Some((window, smooth)), Ok(raw)) = (smooth, raw) {
                    raw.label(format!("ELBO estimate per {unit}"))
                        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.mix(0.3)));
                    if let Ok(avg) = chart.draw_series(LineSeries::new(
                        smooth.into_iter().filter(|p| p.1 >= lo - pad),
                        NAVY.stroke_width(2),
                    )) {
                        avg.label(format!("moving average of {window} {unit}s"))
                            .legend(|(x, y)| {
                                PathElement::new(vec![(x, y), (x + 16, y)], NAVY.stroke_width(2))
                            });
                    }
                    let _ = chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::LowerRight)
                        .background_style(WHITE.mix(0.8))
                        .border_style(BLACK.mix(0.3))
                        .draw();
                }
            }
        }
        let _ = root.present();
    }
    svg
}

/// Navy, for the moving average over the light raw trace.
const NAVY: RGBColor = RGBColor(0, 0, 128);

/// A gradient fit's trace averaged over the trailing window the reported ELBO uses (shorter at
/// the start), with the window; `None` for CAVI's exact sweeps and traces too short to smooth.
fn smoothed(pts: &[(f64, f64)], method: Method) -> Option<(usize, Vec<(f64, f64)>)> {
    let window = crate::infer::StopRule::window_for(pts.len());
    if method == Method::Cavi || window < 2 || pts.len() < 2 * window {
        return None;
    }
    let mut sum = 0.0;
    let avg = pts
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= pts[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect();
    Some((window, avg))
}

/// The summaries a forest plot shows: latents (not categorical ones) and derived quantities,
/// with the PSIS-corrected means where the fit has them.
fn forest_items(out: &FitOutput) -> Vec<(&LatentSummary, &'static str)> {
    let latents = out
        .latents
        .iter()
        .filter(|l| l.categories.is_none())
        .map(|l| (l, ""));
    latents
        .chain(out.derived.iter().map(|d| (d, " (derived)")))
        .collect()
}

/// A forest plot: one panel per latent (each on its own scale, so an intercept of −60 does not
/// flatten a slope of 0.03), a row per element with its 90% interval and mean; `None` when the
/// fit has nothing to show.
pub fn forest_svg(model: &Model, out: &FitOutput) -> Option<String> {
    let items = forest_items(out);
    if items.is_empty() {
        return None;
    }
    let rows = |l: &LatentSummary| l.mean.len().min(FOREST_ROWS) as u32;
    let heights: Vec<u32> = items.iter().map(|(l, _)| PANEL_PX + ROW_PX * rows(l)).collect();
    let title_px = 40;
    let height = title_px + heights.iter().sum::<u32>();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let trust = out
            .trust_level()
            .map_or(String::new(), |t| format!(" (trust: {t})"));
        let root = root
            .titled(
                &format!("{} — posterior means and 90% intervals{trust}", model.name),
                ("sans-serif", 18),
            )
            .unwrap_or(root);
        let mut breaks = Vec::new();
        let mut y = 0;
        for h in &heights[..heights.len() - 1] {
            y += h;
            breaks.push(y);
        }
        let panels = root.split_by_breakpoints(Vec::<u32>::new(), breaks);
        for ((l, suffix), area) in items.iter().zip(panels) {
            let n = rows(l) as usize;
            let lo = l.q05[..n]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min);
            let hi = l.q95[..n]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() || !hi.is_finite() {
                continue;
            }
            let pad = ((hi - lo) * 0.08).max(1e-9 + lo.abs() * 1e-6);
            let (x_lo, x_hi) = axis(lo - pad, hi + pad);
            let more = if l.mean.len() > n {
                format!(" — first {n} of {}", l.mean.len())
            } else {
                String::new()
            };
            let labels: Vec<String> = (0..n)
                .map(|k| format!("{}{}", l.name, index_label(&l.shape, k)))
                .collect();
            let Ok(mut chart) = ChartBuilder::on(&area)
                .caption(format!("{}{suffix}{more}", l.name), ("sans-serif", 14))
                .margin_left(12)
                .margin_right(24)
                .x_label_area_size(24)
                .y_label_area_size(120)
                .build_cartesian_2d(x_lo..x_hi, -0.5..(n as f64 - 0.5))
            else {
                continue;
            };
            let _ = chart
                .configure_mesh()
                .y_labels(n)
                .y_label_formatter(&|v: &f64| {
                    let k = v.round();
                    if (v - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < labels.len() {
                        labels[n - 1 - k as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .x_labels(6)
                .label_style(("sans-serif", 12))
                .light_line_style(WHITE.mix(0.0))
                .draw();
            // The first element at the top.
            let at = |k: usize| (n - 1 - k) as f64;
            let _ =
                chart.draw_series((0..n).map(|k| {
                    PathElement::new(vec![(l.q05[k], at(k)), (l.q95[k], at(k))], BLUE.stroke_width(2))
                }));
            let _ = chart.draw_series((0..n).map(|k| Circle::new((l.mean[k], at(k)), 4, BLUE.filled())));
        }
        let _ = root.present();
    }
    Some(svg)
}

/// A Gaussian kernel density estimate on `points` points across the central 99% of `draws`,
/// with Silverman's bandwidth.
/// An axis range plotters can tick: finite, and at least a millionth of its magnitude wide
/// (its tick search steps by the range's own scale; on a range narrower than the floats'
/// spacing there, as a runaway improper latent's draws give, the step never advances it).
fn axis(lo: f64, hi: f64) -> (f64, f64) {
    let clamp = |v: f64| v.clamp(-1e300, 1e300);
    let (lo, hi) = (clamp(lo), clamp(hi));
    let (lo, hi) = if lo.is_nan() || hi.is_nan() {
        (0.0, 1.0)
    } else {
        (lo.min(hi), lo.max(hi))
    };
    let mid = 0.5 * lo + 0.5 * hi;
    let half = (0.5 * (hi - lo)).max(1e-6 * mid.abs()).max(1e-9);
    (mid - half, mid + half)
}

fn kde(draws: &[f64], points: usize) -> Vec<(f64, f64)> {
    let mut x: Vec<f64> = draws.iter().copied().filter(|v| v.is_finite()).collect();
    if x.len() < 2 {
        return Vec::new();
    }
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let q = |p: f64| crate::infer::quantile(&x, p);
    let iqr = q(0.75) - q(0.25);
    let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
    let h = (0.9 * spread * n.powf(-0.2)).max(1e-12);
    let (lo, hi) = (q(0.005) - h, q(0.995) + h);
    let norm = 1.0 / (n * h * (2.0 * std::f64::consts::PI).sqrt());
    (0..points)
        .map(|i| {
            let t = lo + (hi - lo) * i as f64 / (points - 1) as f64;
            let d: f64 = x.iter().map(|v| (-0.5 * ((t - v) / h).powi(2)).exp()).sum();
            (t, d * norm)
        })
        .collect()
}

/// Marginal densities of the fit's first scalars, in a grid of panels with their names and
/// axes; `None` when the fit drew none.
pub fn densities_svg(model: &Model, out: &FitOutput) -> Option<String> {
    if out.marginals.is_empty() {
        return None;
    }
    const COLUMNS: usize = 4;
    const PANEL_H: u32 = 170;
    let cols = out.marginals.len().min(COLUMNS);
    let rows = out.marginals.len().div_ceil(cols);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 40 + PANEL_H * rows as u32)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let root = root
            .titled(
                &format!(
                    "{} — marginal posterior densities ({} draws of q)",
                    model.name,
                    out.marginals[0].draws.len()
                ),
                ("sans-serif", 18),
            )
            .unwrap_or(root);
        for (m, area) in out.marginals.iter().zip(root.split_evenly((rows, cols))) {
            let curve = kde(&m.draws, 120);
            let Some(top) = curve.iter().map(|p| p.1).reduce(f64::max) else {
                continue;
            };
            if !top.is_finite() || top <= 0.0 {
                continue;
            }
            let (lo, hi) = axis(curve[0].0, curve[curve.len() - 1].0);
            let Ok(mut chart) = ChartBuilder::on(&area)
                .caption(&m.label, ("sans-serif", 13))
                .margin(8)
                .x_label_area_size(22)
                .y_label_area_size(50)
                .build_cartesian_2d(lo..hi, 0.0..top * 1.08)
            else {
                continue;
            };
            let _ = chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(3)
                .label_style(("sans-serif", 11))
                .y_desc("density")
                .light_line_style(WHITE.mix(0.0))
                .draw();
            let _ = chart
                .draw_series(AreaSeries::new(curve, 0.0, BLUE.mix(0.25)).border_style(BLUE.stroke_width(2)));
        }
        let _ = root.present();
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::{axis, kde, smoothed};
    use crate::infer::Method;

    #[test]
    fn axes_are_finite_and_wide_enough_to_tick() {
        let cases = [
            (1e20, 1e20),
            (1e20, 1e20 + 1e5),
            (0.0, 0.0),
            (f64::NEG_INFINITY, 1.0),
            (f64::NAN, 1.0),
            (3.0, 1.0),
        ];
        for (lo, hi) in cases {
            let (a, b) = axis(lo, hi);
            assert!(a.is_finite() && b.is_finite() && b > a, "{lo}..{hi} -> {a}..{b}");
            assert!(b - a >= 1e-6 * a.abs().max(b.abs()), "{lo}..{hi} -> {a}..{b}");
        }
        assert_eq!(axis(1.0, 2.0), (1.0, 2.0));
    }

    #[test]
    fn a_gradient_trace_is_smoothed_over_the_reported_window_and_cavi_is_not() {
        // Alternating noise around a rise: the average is smooth and ends at the last
        // window's mean, the figure the fit reports.
        let pts: Vec<(f64, f64)> = (0..1000)
            .map(|i| {
                (
                    (i + 1) as f64,
                    i as f64 / 100.0 + if i % 2 == 0 { 5.0 } else { -5.0 },
                )
            })
            .collect();
        let (window, avg) = smoothed(&pts, Method::Svi).expect("smoothed");
        assert_eq!(avg.len(), pts.len());
        let last: f64 = pts[pts.len() - window..].iter().map(|p| p.1).sum::<f64>() / window as f64;
        assert!((avg.last().unwrap().1 - last).abs() < 1e-9);
        let wiggle = avg[window..]
            .windows(2)
            .map(|w| (w[1].1 - w[0].1).abs())
            .fold(0.0, f64::max);
        assert!(wiggle < 0.2, "{wiggle}");
        assert!(smoothed(&pts, Method::Cavi).is_none());
        assert!(smoothed(&pts[..3], Method::Svi).is_none());
    }

    #[test]
    fn the_density_estimate_integrates_to_about_one_and_peaks_at_the_mode() {
        // Standard normal quantiles as draws: the estimate should be close to φ.
        let draws: Vec<f64> = (1..2000)
            .map(|i| {
                let p = i as f64 / 2000.0;
                // Inverse normal by bisection on erfc.
                let (mut lo, mut hi) = (-8.0f64, 8.0f64);
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if 0.5 * libm::erfc(-mid / std::f64::consts::SQRT_2) < p {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                lo
            })
            .collect();
        let curve = kde(&draws, 200);
        let dx = curve[1].0 - curve[0].0;
        let mass: f64 = curve.iter().map(|p| p.1 * dx).sum();
        assert!((mass - 0.99).abs() < 0.02, "{mass}");
        let peak = curve.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert!(peak.0.abs() < 0.1 && (peak.1 - 0.3989).abs() < 0.02, "{peak:?}");
    }
}

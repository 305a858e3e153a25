//! What a deep generative model learned, as images: data rows beside their reconstructions,
//! decoded draws from the prior, and, for a two-dimensional code, the decoded grid over the
//! latent space (Kingma & Welling's manifold figures).
//!
//! The subject is the model's image likelihood: an observed statement inside the batched plate
//! whose value is a vector of pixels (`x[n] ~ Bernoulli(decoder(z[n]))`, or a Normal), with one
//! Normal latent code per row. Images show the likelihood's mean (Bernoulli p, Normal loc).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::backend::Session;
use crate::diag::Diagnostic;
use crate::dist::{Domain, Family, Parameterization};
use crate::graph::{DataId, LatentId, Model, NodeId, Op, PlateId, Target};
use crate::infer::epoch::SampleCheck;
use crate::infer::posterior::classify::{check, Classifier};
use crate::infer::{FitOptions, NamedTensor};
use crate::interpret::{expand, Evaluator, Layout, PlateState, Value};
use crate::Loaded;

/// Images to draw, each `height × width` grey levels, row-major.
#[derive(Clone, Debug)]
pub struct Pictures {
    pub height: usize,
    pub width: usize,
    /// Data rows and their reconstructions, pairwise.
    pub inputs: Vec<Vec<f64>>,
    /// Whether the inputs are held-out rows (the fit did not train on them).
    pub heldout: bool,
    pub reconstructions: Vec<Vec<f64>>,
    /// Decoded draws from the prior.
    pub samples: Vec<Vec<f64>>,
    /// `side × side` decoded grid points, row-major, when the code has two dimensions.
    pub manifold: Option<(usize, Vec<Vec<f64>>)>,
    /// Whether the grey levels are already in [0, 1] (unit or binary data); otherwise they are
    /// stretched to the data's range when drawn.
    pub unit: bool,
}

/// Where a model's images come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// The mean of an observed statement's distribution (`x[n] ~ Bernoulli(decoder(z[n]))`).
    Site(usize),
    /// A network applied to the code whose output is as wide as an image (a VAE-GAN's
    /// decoder, whose likelihood lives in the discriminator's features).
    Net(NodeId),
}

/// The images, the data they are compared with, and the code they are decoded from.
#[derive(Clone, Copy, Debug)]
struct Subject {
    source: Source,
    data: DataId,
    plate: PlateId,
    code: LatentId,
    pixels: usize,
    code_dims: usize,
}

fn subject(model: &Model) -> Option<Subject> {
    if model.nets.is_empty() {
        return None;
    }
    let (plate, _, _) = crate::infer::epoch::batched_plate(model)?;
    let mut codes = model
        .latents
        .iter()
        .enumerate()
        .filter(|(_, l)| l.plates == [plate]);
    let (k, code_latent) = codes.next()?;
    let code = LatentId(k as u32);
    let prior = &model.sites[code_latent.site];
    let normal_prior = prior.dist.family == Family::Normal
        && prior.dist.pz == Parameterization::Standard
        && prior.dist.args.iter().all(|a| model.latents_of(*a).is_empty());
    if codes.next().is_some() || !normal_prior || code_latent.shape.len() != 1 {
        return None;
    }
    let code_dims = code_latent.shape[0].value()?;
    let observed = model.sites.iter().enumerate().find_map(|(k, s)| match s.target {
        Target::Data { data, .. }
            if s.plates == [plate]
                && s.dist.value_shape().len() == 1
                && matches!(s.dist.family, Family::Bernoulli | Family::Normal) =>
        {
            Some((Source::Site(k), data, s.dist.value_shape()[0].value()?))
        }
        _ => None,
    });
    let decoded = || {
        model.nodes.iter().enumerate().find_map(|(k, n)| {
            let Op::Net { net, layer: None, .. } = n.op else {
                return None;
            };
            let width = model.nets[net.index()].widths.last()?.value()?;
            let is_code = model.latents_of(NodeId(k as u32)) == [code] && n.ty.plates == [plate];
            let data = model
                .data
                .iter()
                .position(|d| d.shape.len() == 2 && d.shape[1].value() == Some(width))?;
            is_code.then_some((Source::Net(NodeId(k as u32)), DataId(data as u32), width))
        })
    };
    let (source, data, pixels) = observed.or_else(decoded)?;
    Some(Subject {
        source,
        data,
        plate,
        code,
        pixels,
        code_dims,
    })
}

/// How many pixels the model's images have (`None` for a model without images).
pub fn image_pixels(model: &Model) -> Option<usize> {
    subject(model).map(|s| s.pixels)
}

/// Height × width of an image of `pixels` values: `height` when given, else a square.
pub fn image_shape(pixels: usize, height: Option<usize>) -> Option<(usize, usize)> {
    match height {
        Some(h) if h > 0 && pixels.is_multiple_of(h) => Some((h, pixels / h)),
        Some(_) => None,
        None => {
            let side = (pixels as f64).sqrt().round() as usize;
            (side * side == pixels).then_some((side, side))
        }
    }
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error below 1.2e-9): plenty for a grid
/// of codes.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Pictures of a fit saved as `state`: `count` reconstructions (of held-out rows when there are
/// any) and twice as many prior samples; none when the model has no image likelihood, or its
/// pixels do not make a rectangle (set `image_height`).
pub fn pictures(
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    count: usize,
) -> Result<Option<Pictures>, Diagnostic> {
    let model = &loaded.model;
    let Some(sub) = subject(model) else {
        return Ok(None);
    };
    let height = model.settings.count("image_height");
    let Some((height, width)) = image_shape(sub.pixels, height) else {
        return Ok(None);
    };
    let mut s = Session::new(opts.precision);
    s.no_grad();
    let n = model.plate(sub.plate).size.value().expect("bound");
    // Held-out rows when there are any: reconstructions of rows the model never trained on.
    let first = crate::infer::epoch::split(model, opts.holdout).map_or(0, |sp| sp.train);
    let rows: Vec<usize> = (first..n).take(count).collect();
    let plates_for = |rows: &[usize]| PlateState::rows_of(model, sub.plate, rows);

    // Codes of the chosen rows from the guide.
    let plates = plates_for(&rows);
    let drawn = crate::infer::svi::draw_guide_at(&mut s, loaded, opts, state, 1, &plates)?;
    let (data, data_host) = crate::infer::upload_data(&s, loaded);
    let data_id = sub.data;
    let all = data_host[data_id.index()].as_ref().expect("bound data");
    let inputs: Vec<Vec<f64>> = rows
        .iter()
        .map(|&r| all[r * sub.pixels..(r + 1) * sub.pixels].to_vec())
        .collect();
    let code = drawn.latents[sub.code.index()]
        .clone()
        .expect("the guide draws the code");
    let decode = |s: &mut Session, plates: Vec<PlateState>, code: Value| -> Vec<Vec<f64>> {
        let m = plates[sub.plate.index()].len;
        let mut noise = |shape: &[usize]| vec![0.0; shape.iter().product()];
        let mut ev = Evaluator::new(model, &data, &data_host, plates, Some(1), &mut noise);
        ev.params.clone_from(&drawn.params);
        ev.nets.clone_from(&drawn.nets);
        ev.latents[sub.code.index()] = Some(code);
        let (mean, logits) = match sub.source {
            Source::Site(k) => {
                let site = &model.sites[k];
                (
                    ev.eval(s, site.dist.args[0]),
                    site.dist.pz == Parameterization::Logits,
                )
            }
            Source::Net(node) => (ev.eval(s, node), false),
        };
        let lay = Layout {
            samples: Some(1),
            plates: vec![(sub.plate, m)],
            shape: vec![sub.pixels],
        };
        let v = expand(s, &mean, &lay);
        let v = s.values(&v.arr);
        v.chunks(sub.pixels)
            .map(|img| {
                img.iter()
                    .map(|&x| if logits { 1.0 / (1.0 + (-x).exp()) } else { x })
                    .collect()
            })
            .collect()
    };
    let reconstructions = decode(&mut s, plates, code);

    // Codes from the prior, and the grid.
    let code_layout = |m: usize| Layout {
        samples: Some(1),
        plates: vec![(sub.plate, m)],
        shape: vec![sub.code_dims],
    };
    let prior_rows: Vec<usize> = (0..(2 * count).min(n)).collect();
    let prior = &model.sites[model.latent(sub.code).site];
    let (loc, scale) = {
        let mut noise = |shape: &[usize]| vec![0.0; shape.iter().product()];
        let plates = plates_for(&prior_rows);
        let mut ev = Evaluator::new(model, &data, &data_host, plates, Some(1), &mut noise);
        let lay = code_layout(prior_rows.len());
        let loc = ev.eval(&mut s, prior.dist.args[0]);
        let scale = ev.eval(&mut s, prior.dist.args[1]);
        let loc = expand(&mut s, &loc, &lay);
        let scale = expand(&mut s, &scale, &lay);
        (s.values(&loc.arr), s.values(&scale.arr))
    };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x9a11e7);
    let z: Vec<f64> = loc
        .iter()
        .zip(&scale)
        .map(|(m, sd)| {
            let e: f64 = StandardNormal.sample(&mut rng);
            m + sd * e
        })
        .collect();
    let lay = code_layout(prior_rows.len());
    let z = Value::new(s.array(&z, &lay.dims()), lay);
    let samples = decode(&mut s, plates_for(&prior_rows), z);

    // The manifold: codes at the quantiles 0.05..0.95 of the prior's margins (a standard normal
    // scaled by the prior's loc and scale), first dimension down, second across.
    let manifold = (sub.code_dims == 2).then(|| {
        const SIDE: usize = 20;
        let q: Vec<f64> = (0..SIDE)
            .map(|i| normal_quantile(0.05 + 0.9 * i as f64 / (SIDE - 1) as f64))
            .collect();
        let grid_rows: Vec<usize> = (0..SIDE * SIDE).map(|i| i % n).collect();
        let mut z = Vec::with_capacity(2 * SIDE * SIDE);
        for a in &q {
            for b in &q {
                z.push(loc[0] + scale[0] * a);
                z.push(loc[1] + scale[1] * b);
            }
        }
        let lay = code_layout(SIDE * SIDE);
        let z = Value::new(s.array(&z, &lay.dims()), lay);
        (SIDE, decode(&mut s, plates_for(&grid_rows), z))
    });
    let support = model.data[data_id.index()].domain;
    Ok(Some(Pictures {
        height,
        width,
        inputs,
        heldout: first > 0,
        reconstructions,
        samples,
        manifold,
        unit: matches!(support, Domain::Unit | Domain::Binary),
    }))
}

/// Decoded prior draws of a fit at `state` beside held-out data rows: their spread, and a
/// classifier's reading; `None` for a model without images.
pub fn sample_check(
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    draws: usize,
    classifier: Option<&Classifier>,
) -> Option<SampleCheck> {
    // `pictures` decodes twice as many prior draws as it reconstructs rows.
    let p = pictures(loaded, opts, state, draws.div_ceil(2)).ok()??;
    Some(check(&p.samples, &p.inputs, classifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_the_standard_normal() {
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.05) + 1.644_853_626_951_472_2).abs() < 1e-8);
        assert!((normal_quantile(0.01) + 2.326_347_874_040_841).abs() < 1e-8);
    }

    #[test]
    fn image_shapes() {
        assert_eq!(image_shape(784, None), Some((28, 28)));
        assert_eq!(image_shape(64, None), Some((8, 8)));
        assert_eq!(image_shape(560, None), None);
        assert_eq!(image_shape(560, Some(28)), Some((28, 20)));
        assert_eq!(image_shape(560, Some(27)), None);
    }
}

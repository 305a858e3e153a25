//! Deep generative models written as model files: the VAE learns, the β-VAE reduces to it, and
//! the VAE-GAN's adversaries train without leaking gradients into each other.

use std::path::Path;

use vi::infer::{self, epoch, FitOptions, FitOutput};
use vi::Loaded;

mod common;

use common::{load_text, load_with, models, tensor};

fn model_text(name: &str) -> String {
    std::fs::read_to_string(models().join(name)).unwrap()
}

fn fit(loaded: &Loaded, tweak: impl FnOnce(&mut FitOptions)) -> FitOutput {
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    tweak(&mut opts);
    infer::fit(loaded, &opts, &mut |_| {}).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

fn epochs(loaded: &Loaded, n: usize) -> usize {
    let m = &loaded.model;
    let opts = FitOptions::from_settings(&m.settings, m);
    n * epoch::steps_per_epoch(m, epoch::split(m, opts.holdout))
}

#[test]
fn the_vae_learns_the_digits() {
    let loaded = load_text(&model_text("vae.vi"));
    let steps = epochs(&loaded, 10);
    let out = fit(&loaded, |o| o.steps = Some(steps));
    assert_eq!(out.epochs.len(), 10);
    let heldout = |k: usize| out.epochs[k].heldout.expect("a held-out split").elbo;
    // An untrained decoder scores about 64 ln 2 = 44.4 nats per image; the JAX anchor reaches
    // -32.5 after one epoch and -25.2 after twenty on these data (RESULTS.md, W5 digits), so the
    // whole climb left after epoch 1 is about 7 nats. (The issue asks for 10 between epochs 1
    // and 10, which these 64-pixel grey images cannot give: see the session note.)
    assert!(heldout(0) < -30.0, "epoch 1: {}", heldout(0));
    assert!(
        heldout(9) - heldout(0) >= 5.0,
        "epoch 1 {} → epoch 10 {}",
        heldout(0),
        heldout(9)
    );
    assert!(heldout(9) > -28.5, "epoch 10: {}", heldout(9));
    for e in &out.epochs {
        let h = e.heldout.unwrap();
        assert!(
            (h.elbo + h.rate + h.distortion).abs() < 1e-9,
            "ELBO = −(rate + distortion)"
        );
        assert!(h.rate > 0.0, "the analytic KL is positive");
    }

    // Reconstructions of held-out images against the best constant image (the pixel means),
    // whose squared error is the pixel variance: a decoder that ignores its code cannot beat it,
    // a scrambled one does worse. After 10 epochs the code carries about 3 nats (the rate), and
    // reconstructions remove 15% of the variance; 10% is the bound.
    let mut opts = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    opts.steps = Some(steps);
    let pics = infer::pictures::pictures(&loaded, &opts, &out.state, 32)
        .unwrap()
        .expect("the VAE has images");
    assert_eq!((pics.height, pics.width), (8, 8));
    let d = 64;
    let all = &loaded.data.get("x").unwrap().values;
    let n = all.len() / d;
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| all[i * d + j]).sum::<f64>() / n as f64)
        .collect();
    let mse = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| x.iter().zip(y).map(|(u, v)| (u - v) * (u - v)))
            .sum::<f64>()
            / (a.len() * d) as f64
    };
    let constant: Vec<Vec<f64>> = vec![mean; pics.inputs.len()];
    let baseline = mse(&pics.inputs, &constant);
    let recon = mse(&pics.inputs, &pics.reconstructions);
    assert!(
        recon < 0.9 * baseline,
        "reconstruction MSE {recon:.4} vs {baseline:.4} for the mean image"
    );
}

#[test]
fn mnist_heldout_elbo_climbs_ten_nats() {
    let path = "../shared/data/mnist/t10k-images-idx3-ubyte.gz";
    if !Path::new(path).exists() {
        eprintln!("skipped: {path} not here");
        return;
    }
    let model = models().join("vae.vi");
    let loaded = load_with(&model.to_string_lossy(), &[&format!("x={path}")]);
    let steps = epochs(&loaded, 10);
    let out = fit(&loaded, |o| o.steps = Some(steps));
    let heldout = |k: usize| out.epochs[k].heldout.unwrap().elbo;
    assert!(
        heldout(9) - heldout(0) >= 10.0,
        "epoch 1 {} → epoch 10 {}",
        heldout(0),
        heldout(9)
    );
}

#[test]
fn the_conv_vae_learns_mnist_digits_and_a_classifier_reads_its_draws_every_epoch() {
    let loaded = load_text(&model_text("conv_vae.vi"));
    let steps = epochs(&loaded, 8);
    let classifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/classifiers/mnist_mlp.safetensors");
    let out = fit(&loaded, |o| {
        o.steps = Some(steps);
        o.classifier = Some(classifier.clone());
    });
    assert!(out.diverged.is_none());
    let heldout = |k: usize| out.epochs[k].heldout.expect("a held-out split").elbo;
    // An untrained decoder scores about 784 ln 2 = 543 nats per image; on these 2000 digits the
    // conv VAE reaches about -320 after one epoch, -213 after three and -188 after eight.
    assert!(heldout(2) > -240.0, "epoch 3: {}", heldout(2));
    assert!(
        heldout(2) - heldout(0) > 40.0,
        "epoch 1 {} → epoch 3 {}",
        heldout(0),
        heldout(2)
    );
    // The bar a decoder that ignores its code can reach: every held-out image scored by the
    // training rows' mean image (about -194.7 here). The ELBO is a lower bound, so beating it
    // means the code carries what the pixels share.
    // IDX bytes, which the fit reads as grey levels in [0, 1].
    let bytes = loaded.data.get("x").unwrap();
    assert!(bytes.bytes);
    let x: Vec<f64> = bytes.values.iter().map(|v| v / 255.0).collect();
    let d = 784;
    let n = x.len() / d;
    let train = n - n / 10;
    let mean: Vec<f64> = (0..d)
        .map(|j| ((0..train).map(|i| x[i * d + j]).sum::<f64>() / train as f64).clamp(1e-6, 1.0 - 1e-6))
        .collect();
    let constant = (train..n)
        .map(|i| {
            (0..d)
                .map(|j| {
                    let v = x[i * d + j];
                    v * mean[j].ln() + (1.0 - v) * (1.0 - mean[j]).ln()
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / (n - train) as f64;
    assert!(
        heldout(7) > constant + 3.0,
        "epoch 8: {} against the mean image's {constant}",
        heldout(7)
    );
    let last = out.epochs.len() - 1;
    for (k, e) in out.epochs.iter().enumerate() {
        let c = e
            .samples
            .as_ref()
            .expect("decoded prior draws checked after every epoch");
        // 500 draws after each epoch; 2000 after the last, the figure the fit is judged by.
        assert_eq!(c.draws, if k == last { 2000 } else { 500 });
        assert!(c.diversity > 0.1 && c.diversity < 2.0, "spread {}", c.diversity);
        let k = c.classes.as_ref().expect("the classifier reads the draws");
        assert_eq!(k.shares.len(), 10);
        assert!((k.shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(k.confidence > 0.1 && k.confidence <= 1.0);
        assert!(k.entropy >= 0.0 && k.entropy <= 10f64.ln() + 1e-12);
    }
}

#[test]
fn beta_vae_with_beta_one_and_no_capacity_is_the_vae() {
    let text = model_text("beta_vae.vi")
        .replace("const beta = 4.0", "const beta = 1.0")
        .replace("const C_max = 25.0", "const C_max = 0.0");
    assert!(text.contains("const beta = 1.0") && text.contains("const C_max = 0.0"));
    let objective = "objective maximise loglik - beta * abs(kl - anneal(0, C_max, C_steps))";
    assert!(text.contains(objective));
    let plain = text.replace(objective, "");
    let five = |o: &mut FitOptions| {
        o.steps = Some(5);
        o.tol = Some(0.0);
        o.precision = vi::backend::Precision::F64;
    };
    let beta = fit(&load_text(&text), five);
    let vae = fit(&load_text(&plain), five);
    // The same ELBO at every step means the same parameters after every update, so the same
    // gradients of the two objectives.
    for (a, b) in beta.elbo_trace.iter().zip(&vae.elbo_trace) {
        assert!((a - b).abs() <= 1e-6 * b.abs(), "{a} vs {b}");
    }
    for t in &vae.state {
        let other = tensor(&beta, &t.name);
        let worst = t
            .values
            .iter()
            .zip(other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{}: differs by {worst}", t.name);
    }
}

#[test]
fn vae_gan_trains_and_its_discriminator_is_neither_fooled_nor_perfect() {
    let loaded = load_text(&model_text("vae_gan.vi"));
    let out = fit(&loaded, |o| o.steps = Some(epochs(&loaded, 2)));
    assert!(out.diverged.is_none());
    assert!(out.elbo_trace.iter().all(|e| e.is_finite()));
    for t in &out.state {
        assert!(t.values.iter().all(|v| v.is_finite()), "{} is not finite", t.name);
    }
    // The model's accuracy terms: the discriminator on (noisy) data and on decoded prior draws,
    // the epoch's mean per row. After two epochs it tells them apart better than chance, but
    // not perfectly on both (measured: about 0.58 on data and 1.00 on draws).
    let last = out.epochs.last().expect("epochs");
    let term = |name: &str| {
        last.terms
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no term {name}"))
    };
    let (data, fakes) = (term("right_on_data"), term("right_on_fakes"));
    for v in [data, fakes] {
        assert!((0.0..=1.0).contains(&v), "an accuracy: {v}");
    }
    let accuracy = (data + fakes) / 2.0;
    assert!(
        accuracy > 0.5 && accuracy < 0.99,
        "discriminator accuracy {data} on data, {fakes} on draws"
    );
    // Its decoded prior draws are looked at after every epoch, like a VAE's.
    assert!(out
        .epochs
        .iter()
        .all(|e| e.samples.as_ref().is_some_and(|c| c.diversity > 0.05)));
}

#[test]
fn each_parameter_group_moves_by_its_own_objective_only() {
    let base = model_text("vae_gan.vi");
    let one_sgd_step = |o: &mut FitOptions| {
        o.steps = Some(1);
        o.tol = Some(0.0);
        o.optimizer = vi::infer::optim::Kind::Sgd;
        o.momentum = 0.0;
        o.lr = 1e-3;
        o.precision = vi::backend::Precision::F64;
    };
    let reference = fit(&load_text(&base), one_sgd_step);
    let changed = |line: &str, new: &str| {
        assert!(base.contains(line));
        fit(&load_text(&base.replace(line, new)), one_sgd_step)
    };
    // Doubling one group's objective doubles that group's step and leaves the others' alone.
    let cases = [
        (
            "objective disc: maximise real + fake",
            "objective disc: maximise 2 * (real + fake)",
            "disc",
        ),
        (
            "objective encoder: maximise elbo",
            "objective encoder: maximise 2 * elbo",
            "encoder",
        ),
        (
            "objective decoder: maximise gamma * loglik + fooled",
            "objective decoder: maximise 2 * (gamma * loglik + fooled)",
            "decoder",
        ),
    ];
    for (line, new, group) in cases {
        let out = changed(line, new);
        for t in &reference.state {
            let other = tensor(&out, &t.name);
            let moved = t.values.iter().zip(other).any(|(a, b)| a != b);
            let owner = t.name.split('.').next().unwrap();
            assert_eq!(
                moved,
                owner == group,
                "{}: changing {group}'s objective {} it",
                t.name,
                if moved { "moved" } else { "did not move" }
            );
        }
    }
}

//! Using `vi` as a library: load a model with its data, fit it, and read the posterior.
//!
//!     cargo run --release --example fit_gmm

use std::path::Path;

use vi::infer::{self, FitOptions};
use vi::LoadOptions;

fn main() {
    let opts = LoadOptions {
        require_data: true,
        ..LoadOptions::default()
    };
    let loaded = match vi::load(Path::new("models/gmm.vi"), &opts) {
        Ok(l) => l,
        Err(diags) => {
            eprintln!("{}", diags.render(false));
            std::process::exit(1);
        }
    };
    let options = FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    let out = infer::fit(&loaded, &options, &mut |_| {}).unwrap_or_else(|diags| {
        eprintln!("{}", diags.render(false));
        std::process::exit(1);
    });
    println!(
        "{} by {} in {} sweeps, ELBO {:.4}",
        loaded.model.name,
        out.method.name(),
        out.iterations,
        out.elbo
    );
    for line in &out.reasons {
        println!("  {line}");
    }
    let mu = out
        .latents
        .iter()
        .find(|l| l.name == "mu")
        .expect("the model draws mu");
    for (k, (m, sd)) in mu.mean.iter().zip(&mu.sd).enumerate() {
        println!("mu[{k}] = {m:.3} ± {sd:.3}");
    }
}

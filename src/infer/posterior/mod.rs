//! What runs after a fit, on its saved state: how far to trust it (PSIS k̂, the
//! importance-weighted bound), posterior and predictive draws, held-out log p(x), pictures.
//!
//! These use the engines' forward passes and draws, never their training loops: nothing here
//! imports `svi`'s trainer, `cavi`'s sweeps, or the command line.

pub mod arviz;
pub mod classify;
pub mod eval;
pub mod loo;
pub mod pictures;
pub mod sample;
pub mod trust;

/// A fit's saved state: its tensors and what `params.safetensors` records beside them.
pub type SavedFit = (
    Vec<crate::infer::NamedTensor>,
    std::collections::HashMap<String, String>,
);

/// Read the fit `vinf fit` saved in `dir` for the after-fit tools (`sample`, `eval`, `loo`).
///
/// The one rule for all of them: a fit of another model is refused, naming the model it was
/// made from. Its tensors might even match by name and shape, and then every number computed
/// from them would be wrong without a word.
pub fn read_fit(dir: &std::path::Path, loaded: &crate::Loaded) -> Result<SavedFit, crate::diag::Diagnostics> {
    let (state, meta) = crate::store::read_safetensors(&dir.join("params.safetensors"))?;
    check_model(dir, &meta, &loaded.model.name)?;
    Ok((state, meta))
}

/// `Err` when the fit in `dir` (its metadata `meta`) was made from a model other than `model`.
pub fn check_model(
    dir: &std::path::Path,
    meta: &std::collections::HashMap<String, String>,
    model: &str,
) -> Result<(), crate::diag::Diagnostic> {
    match meta.get("model") {
        Some(m) if m != model => Err(crate::diag::Diagnostic::new(
            "vi::fit::other_model",
            format!(
                "{} holds a fit of model `{m}`, not of `{model}`",
                dir.join("params.safetensors").display()
            ),
        )
        .help(format!(
            "pass the model it was fitted from (`{m}.vi`), or fit `{model}` first (`vinf fit MODEL --out DIR`)"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_of_another_model_is_refused_by_name() {
        let dir = std::path::Path::new("out/gmm");
        let meta = std::collections::HashMap::from([("model".to_string(), "gmm".to_string())]);
        assert!(check_model(dir, &meta, "gmm").is_ok());
        let d = check_model(dir, &meta, "eight_schools").unwrap_err();
        assert_eq!(d.code, "vi::fit::other_model");
        assert!(d.message.contains("model `gmm`"), "{}", d.message);
        // A file without the record (older or hand-made) is taken as it is.
        assert!(check_model(dir, &Default::default(), "gmm").is_ok());
    }
}

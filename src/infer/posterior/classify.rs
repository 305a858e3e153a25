//! Reading decoded draws with a fixed image classifier: a chain of dense layers saved as
//! safetensors (`layers.K.weight` `[in, out]` and `layers.K.bias` `[out]`, K = 0, 1, …; ReLU
//! between them, softmax after the last), which a logistic regression (one layer) or
//! scikit-learn's `MLPClassifier` (`coefs_`, `intercepts_`) writes directly. Pure host maths
//! on a few hundred images; it never trains anything.

use std::path::Path;

use crate::diag::Diagnostic;
use crate::infer::epoch::{ClassScore, SampleCheck};

#[derive(Clone, Debug)]
pub struct Classifier {
    /// Per layer (weights `[in, out]` row-major, biases), input first.
    layers: Vec<(Vec<f64>, Vec<f64>)>,
    inputs: usize,
}

impl Classifier {
    pub fn load(path: &Path) -> Result<Classifier, Diagnostic> {
        if !path.is_file() {
            return Err(
                Diagnostic::new("vi::io::classifier", format!("cannot read the classifier `{}`", path.display()))
                    .help("`--classifier` names a safetensors file, e.g. benches/classifiers/mnist_mlp.safetensors (benches/mnist_classifier.py writes it)"),
            );
        }
        let (tensors, _) = crate::store::read_safetensors(path)?;
        let bad = |why: String| {
            Diagnostic::new("vi::io::classifier", format!("`{}` is not a classifier", path.display())).help(format!(
                "{why}; a classifier is a safetensors file of `layers.K.weight` [in, out] and `layers.K.bias` [out], K = 0, 1, …"
            ))
        };
        let find = |name: String| tensors.iter().find(|t| t.name == name);
        let mut layers = Vec::new();
        let mut inputs = 0;
        while let Some(w) = find(format!("layers.{}.weight", layers.len())) {
            let k = layers.len();
            let b = find(format!("layers.{k}.bias"))
                .ok_or_else(|| bad(format!("`layers.{k}.bias` is missing")))?;
            let [n_in, n_out] = w.shape[..] else {
                return Err(bad(format!(
                    "`layers.{k}.weight` has shape {:?}, not [in, out]",
                    w.shape
                )));
            };
            let wide = layers
                .last()
                .map_or(n_in, |(_, prev): &(Vec<f64>, Vec<f64>)| prev.len());
            if b.values.len() != n_out || wide != n_in {
                return Err(bad(format!("layer {k}'s shapes do not chain")));
            }
            if k == 0 {
                inputs = n_in;
            }
            layers.push((w.values.clone(), b.values.clone()));
        }
        if layers.is_empty() {
            return Err(bad("it has no `layers.0.weight`".into()));
        }
        Ok(Classifier { layers, inputs })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |(_, b)| b.len())
    }

    /// Class probabilities of one image.
    pub fn probabilities(&self, image: &[f64]) -> Vec<f64> {
        let mut h = image.to_vec();
        for (k, (w, b)) in self.layers.iter().enumerate() {
            let n_out = b.len();
            let mut z = b.clone();
            for (i, &x) in h.iter().enumerate() {
                if x != 0.0 {
                    for (zj, wj) in z.iter_mut().zip(&w[i * n_out..(i + 1) * n_out]) {
                        *zj += x * wj;
                    }
                }
            }
            if k + 1 < self.layers.len() {
                z.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = z;
        }
        let top = h.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = h.iter().map(|v| (v - top).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|v| v / total).collect()
    }

    /// How confidently and how evenly the classifier reads `images`.
    pub fn score(&self, images: &[Vec<f64>]) -> ClassScore {
        let mut shares = vec![0.0; self.classes()];
        let mut confidence = 0.0;
        for img in images {
            let p = self.probabilities(img);
            let (best, top) =
                p.iter().enumerate().fold(
                    (0, f64::NEG_INFINITY),
                    |a, (k, &v)| if v > a.1 { (k, v) } else { a },
                );
            shares[best] += 1.0;
            confidence += top;
        }
        let n = images.len().max(1) as f64;
        shares.iter_mut().for_each(|s| *s /= n);
        let entropy = -shares
            .iter()
            .filter(|&&s| s > 0.0)
            .map(|s| s * s.ln())
            .sum::<f64>();
        ClassScore {
            confidence: confidence / n,
            entropy,
            shares,
        }
    }
}

/// Decoded draws against data rows: their spread (pixel sds across draws over those across
/// the data, averaged over pixels) and, with a classifier, its reading of the draws.
pub fn check(draws: &[Vec<f64>], data: &[Vec<f64>], classifier: Option<&Classifier>) -> SampleCheck {
    let sd = |rows: &[Vec<f64>], j: usize| {
        let n = rows.len().max(1) as f64;
        let mean = rows.iter().map(|r| r[j]).sum::<f64>() / n;
        (rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n).sqrt()
    };
    let pixels = draws.first().map_or(0, Vec::len);
    let (mut across_draws, mut across_data) = (0.0, 0.0);
    for j in 0..pixels {
        across_draws += sd(draws, j);
        across_data += sd(data, j);
    }
    SampleCheck {
        draws: draws.len(),
        diversity: if across_data > 0.0 {
            across_draws / across_data
        } else {
            f64::NAN
        },
        classes: classifier
            .filter(|c| c.inputs() == pixels)
            .map(|c| c.score(draws)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two inputs, three classes, one layer: class k wins where input k is largest, class 2
    /// when neither input is lit.
    fn toy() -> Classifier {
        Classifier {
            layers: vec![(vec![10.0, 0.0, 0.0, 0.0, 10.0, 0.0], vec![0.0, 0.0, 5.0])],
            inputs: 2,
        }
    }

    #[test]
    fn the_classifier_reads_confidence_and_the_class_histogram() {
        let c = toy();
        let p = c.probabilities(&[1.0, 0.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p[0] > 0.99);
        let images = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 0.0]];
        let s = c.score(&images);
        assert_eq!(s.shares, vec![0.5, 0.25, 0.25]);
        let even = -(0.5f64 * 0.5f64.ln() + 2.0 * 0.25 * 0.25f64.ln());
        assert!((s.entropy - even).abs() < 1e-12);
        assert!(s.confidence > 0.99);
    }

    #[test]
    fn collapsed_draws_are_named_and_varied_ones_are_not() {
        let c = toy();
        let data = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 0.0], vec![0.5, 0.5]];
        // Draws that repeat one image: no spread, and one class.
        let same = vec![vec![1.0, 0.0]; 40];
        let collapsed = check(&same, &data, Some(&c));
        assert!(collapsed.diversity < 1e-12);
        assert!(collapsed.collapse().is_some_and(|w| w.contains("vary 0%")));
        // Varied draws that never show class 1.
        let mut draws = vec![vec![1.0, 0.0]; 20];
        draws.extend(vec![vec![0.0, 0.0]; 20]);
        let lost = check(&draws, &data, Some(&c));
        assert!(lost.diversity > 0.25, "{}", lost.diversity);
        assert!(
            lost.collapse().is_some_and(|w| w.contains("class 1 (0.0%)")),
            "{:?}",
            lost.collapse()
        );
        // Every class, spread like the data.
        let mut all = draws;
        all.extend(vec![vec![0.0, 1.0]; 20]);
        assert_eq!(check(&all, &data, Some(&c)).collapse(), None);
    }
}

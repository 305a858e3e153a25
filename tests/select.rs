//! Comparisons and indicators, `where`, reductions along one axis and `cumsum`: each derived
//! from a latent matrix and checked draw by draw against its definition, and an indicator
//! covariate (`g == 2`) in a regression whose posterior is known in closed form.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("select_{name}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn vinf(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vinf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_construct_takes_its_definition_at_every_draw() {
    let d = dir("identities");
    let model = d.join("m.vi");
    std::fs::write(
        &model,
        "A ~ Normal(0, 1) [2, 3]\n\
         let c = cumsum(A)\n\
         let pos = where(A > 0, A, 0)\n\
         let ind = A >= 0.5\n\
         let colsum = sum(A, 0)\n\
         let rowmean = mean(A, 1)\n\
         let collse = logsumexp(A, 0)\n",
    )
    .unwrap();
    let (m, out) = (model.to_str().unwrap(), d.join("fit"));
    let o = out.to_str().unwrap();
    vinf(&["fit", m, "--out", o]);
    vinf(&["sample", m, "--from", o, "-n", "50"]);
    // draw -> variable -> index -> value
    let mut draws: HashMap<usize, HashMap<(String, String), f64>> = HashMap::new();
    for line in std::fs::read_to_string(out.join("samples.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let c: Vec<&str> = line.split(',').collect();
        draws
            .entry(c[0].parse().unwrap())
            .or_default()
            .insert((c[1].to_string(), c[3].to_string()), c[4].parse().unwrap());
    }
    assert_eq!(draws.len(), 50);
    for v in draws.values() {
        let get = |name: &str, idx: String| v[&(name.to_string(), idx)];
        let a = |i: usize, j: usize| get("A", format!("{i};{j}"));
        for i in 0..2 {
            let mut run = 0.0;
            for j in 0..3 {
                run += a(i, j);
                let at = format!("{i};{j}");
                assert!((get("c", at.clone()) - run).abs() < 1e-9);
                assert!((get("pos", at.clone()) - a(i, j).max(0.0)).abs() < 1e-12);
                assert_eq!(get("ind", at), f64::from(u8::from(a(i, j) >= 0.5)));
            }
            let mean = (0..3).map(|j| a(i, j)).sum::<f64>() / 3.0;
            assert!((get("rowmean", i.to_string()) - mean).abs() < 1e-9);
        }
        for j in 0..3 {
            assert!((get("colsum", j.to_string()) - (a(0, j) + a(1, j))).abs() < 1e-9);
            let lse = (a(0, j).exp() + a(1, j).exp()).ln();
            assert!((get("collse", j.to_string()) - lse).abs() < 1e-9);
        }
    }
}

/// y ~ Normal(b0 + b1 * (g == 2), 1) with b ~ Normal(0, 10): the posterior of b1 is the
/// difference of the two groups' means, shrunk by the prior, computed here exactly.
#[test]
fn an_indicator_covariate_fits_the_exact_posterior() {
    let d = dir("indicator");
    let n = 60;
    let g: Vec<u32> = (0..n).map(|i| 1 + (i % 3) as u32).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| 1.0 + if g[i] == 2 { 2.5 } else { 0.0 } + ((i * 7) % 11) as f64 / 11.0 - 0.5)
        .collect();
    let rows: String = g.iter().zip(&y).map(|(g, y)| format!("{g},{y}\n")).collect();
    std::fs::write(d.join("d.csv"), format!("g,y\n{rows}")).unwrap();
    let model = d.join("m.vi");
    std::fs::write(
        &model,
        "data g: int[N] from \"d.csv\"\ndata y: real[N] from \"d.csv\"\n\
         b ~ Normal(0, 10) [2]\n\
         for i in 1..N {\n    y[i] ~ Normal(b[0] + b[1] * (g[i] == 2), 1)\n}\n",
    )
    .unwrap();
    let out = d.join("fit");
    vinf(&["fit", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // Exact: precision = X'X + I/100, mean = precision^-1 X'y, X = [1, ind].
    let (mut xx, mut xy) = ([[0.01, 0.0], [0.0, 0.01]], [0.0, 0.0]);
    for i in 0..n {
        let row = [1.0, f64::from(u8::from(g[i] == 2))];
        for r in 0..2 {
            xy[r] += row[r] * y[i];
            for c in 0..2 {
                xx[r][c] += row[r] * row[c];
            }
        }
    }
    let det = xx[0][0] * xx[1][1] - xx[0][1] * xx[1][0];
    let inv = [
        [xx[1][1] / det, -xx[0][1] / det],
        [-xx[1][0] / det, xx[0][0] / det],
    ];
    for k in 0..2 {
        let mean = inv[k][0] * xy[0] + inv[k][1] * xy[1];
        let sd = inv[k][k].sqrt();
        let got = s["latents"]["b"]["mean"][k].as_f64().unwrap();
        assert!(
            (got - mean).abs() < 0.1 * sd,
            "b[{k}] = {got}, exact {mean} ± {sd}"
        );
    }
}

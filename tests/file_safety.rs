//! No command deletes or overwrites a file it did not write. Each command that writes is pointed
//! at a folder holding a user's file: it writes beside it, or refuses with a diagnostic naming
//! the path, and the user's file is byte for byte as it was. Its own earlier outputs it replaces.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vinf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// A fresh folder for one test.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vi-safety-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

const NOTE: &str = "my notes: do not lose these\n";

/// A fit of the GMM (CAVI: fast) into `dir`.
fn fit(dir: &Path) -> Output {
    vinf(&["fit", "models/gmm.vi", "--out", &s(dir)])
}

/// `vinf sample` of the GMM fitted in `from`, five draws in `format`, written to `out`.
fn sample(from: &Path, format: &str, out: &Path) -> Output {
    vinf(&[
        "sample",
        "models/gmm.vi",
        "--from",
        &s(from),
        "-n",
        "5",
        "--format",
        format,
        "--out",
        &s(out),
    ])
}

fn refused(r: &Output, path: &Path) {
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("vi::io::not_ours"), "{err}");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(err.contains(&*name), "the diagnostic names {name}: {err}");
}

#[test]
fn fit_writes_beside_a_users_file_and_never_over_one() {
    let dir = folder("fit");
    std::fs::write(dir.join("notes.txt"), NOTE).unwrap();
    let r = fit(&dir);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), NOTE);
    assert!(dir.join("summary.json").exists());
    // Its own outputs it replaces.
    let again = fit(&dir);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A summary.json it did not write stays, and the fit says why it stopped.
    let other = folder("fit-foreign");
    std::fs::write(other.join("summary.json"), NOTE).unwrap();
    let r = fit(&other);
    refused(&r, &other.join("summary.json"));
    assert_eq!(std::fs::read_to_string(other.join("summary.json")).unwrap(), NOTE);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn sample_in_every_format_never_replaces_a_users_file_or_folder() {
    let dir = folder("sample");
    assert_eq!(fit(&dir).status.code(), Some(0));
    let fitted: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let mine = folder("sample-mine");
    std::fs::write(mine.join("notes.txt"), NOTE).unwrap();
    for format in ["long", "cmdstan"] {
        let target = mine.join("notes.txt");
        let r = sample(&dir, format, &target);
        refused(&r, &target);
        // Beside it, and then again over its own file, is fine.
        let own = mine.join(format!("draws-{format}.csv"));
        for _ in 0..2 {
            let r = sample(&dir, format, &own);
            assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
        }
    }
    // A Zarr store is a folder: not over the fit's own folder, nor over one holding a note.
    for target in [dir.clone(), mine.clone()] {
        let r = sample(&dir, "zarr", &target);
        refused(&r, &target);
    }
    let store = mine.join("draws.zarr");
    for _ in 0..2 {
        let r = sample(&dir, "zarr", &store);
        assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(store.join(".zmetadata").exists());
    }
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), NOTE);
    for (p, bytes) in fitted {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{} changed", p.display());
    }
    // No temporary folder or file is left behind.
    let left: Vec<String> = std::fs::read_dir(&mine)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("vinf-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&mine);
}

#[test]
fn eval_and_loo_never_replace_a_users_file() {
    // `eval` wants a batched plate of rows (the VAE's); `loo` any fit.
    let vae = folder("eval");
    let r = vinf(&["fit", "models/vae.vi", "--steps", "2", "--out", &s(&vae)]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let gmm = folder("loo");
    assert_eq!(fit(&gmm).status.code(), Some(0));
    let (vae_from, gmm_from) = (s(&vae), s(&gmm));
    let cases: [(&Path, &str, Vec<&str>); 2] = [
        (
            &vae,
            "eval.json",
            vec![
                "eval",
                "models/vae.vi",
                "--from",
                &vae_from,
                "-k",
                "4",
                "--rows",
                "3",
            ],
        ),
        (
            &gmm,
            "loo.json",
            vec!["loo", "models/gmm.vi", "--from", &gmm_from, "-n", "50"],
        ),
    ];
    for (dir, file, args) in cases {
        std::fs::write(dir.join(file), NOTE).unwrap();
        refused(&vinf(&args), &dir.join(file));
        assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), NOTE);
        std::fs::remove_file(dir.join(file)).unwrap();
        for _ in 0..2 {
            let r = vinf(&args);
            assert_eq!(
                r.status.code(),
                Some(0),
                "{file}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert!(dir.join(file).exists());
        }
    }
    let _ = std::fs::remove_dir_all(&vae);
    let _ = std::fs::remove_dir_all(&gmm);
}

/// Pictures (a deep generative model's reconstructions and samples) go through the same guard:
/// a `samples.png` of the user's in the output folder stays.
#[test]
fn pictures_never_replace_a_users_image() {
    let dir = folder("pictures");
    std::fs::write(dir.join("samples.png"), NOTE).unwrap();
    let r = vinf(&["fit", "models/vae.vi", "--steps", "2", "--out", &s(&dir)]);
    refused(&r, &dir.join("samples.png"));
    assert_eq!(std::fs::read_to_string(dir.join("samples.png")).unwrap(), NOTE);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fit folder written before vinf kept records (no `.vinf-outputs`, a `params.safetensors`
/// that a fit saved) is fitted into again as before; a user's file beside it stays untouched.
#[test]
fn a_fit_folder_from_before_the_records_is_still_ours() {
    let dir = folder("legacy");
    assert_eq!(fit(&dir).status.code(), Some(0));
    std::fs::remove_file(dir.join(".vinf-outputs")).unwrap();
    std::fs::write(dir.join("notes.txt"), NOTE).unwrap();
    let r = fit(&dir);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), NOTE);
    // Without a fit's params there, the same names are the user's.
    let other = folder("legacy-not");
    std::fs::write(other.join("summary.json"), NOTE).unwrap();
    std::fs::write(other.join("params.safetensors"), NOTE).unwrap();
    refused(&fit(&other), &other.join("summary.json"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

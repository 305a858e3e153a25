//! Zarr v2 directory stores: groups of named, dimension-labelled arrays, as xarray and ArviZ
//! read them (`xarray.open_datatree(path, engine="zarr")`, `arviz.from_zarr`).
//!
//! Written by hand: an uncompressed v2 store is a few JSON files and one little-endian chunk
//! per array, while the `zarrs` crate brings some 136 crates even without default features.
//! Each array is one chunk; xarray's dimension names go in `_ARRAY_DIMENSIONS`, and the
//! consolidated `.zmetadata` lets readers open the store without listing it.

use std::path::Path;

use serde_json::{json, Map, Value as Json};

use super::io_error;
use crate::diag::Diagnostic;

/// An array's values: floats, or integers (coordinates such as `chain` and `draw`).
#[derive(Clone, Debug)]
pub enum Values {
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::F64(v) => v.len(),
            Values::I64(v) => v.len(),
        }
    }
}

/// A named array with one dimension name per axis, row-major.
#[derive(Clone, Debug)]
pub struct Array {
    pub name: String,
    pub dims: Vec<String>,
    pub shape: Vec<usize>,
    pub values: Values,
}

/// A group of arrays with its attributes (ArviZ's `posterior`, `observed_data`, ...).
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub attrs: Map<String, Json>,
    pub arrays: Vec<Array>,
}

fn array_meta(a: &Array) -> (Json, Json) {
    let (dtype, fill) = match a.values {
        Values::F64(_) => ("<f8", json!("NaN")),
        // No fill value: xarray would mask the integers equal to it.
        Values::I64(_) => ("<i8", Json::Null),
    };
    // A zero-length axis still takes a chunk length of at least one.
    let chunks: Vec<usize> = a.shape.iter().map(|&n| n.max(1)).collect();
    let zarray = json!({
        "zarr_format": 2,
        "shape": a.shape,
        "chunks": chunks,
        "dtype": dtype,
        "compressor": null,
        "fill_value": fill,
        "filters": null,
        "order": "C",
        "dimension_separator": ".",
    });
    (zarray, json!({ "_ARRAY_DIMENSIONS": a.dims }))
}

fn chunk_bytes(values: &Values) -> Vec<u8> {
    match values {
        Values::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Values::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// The single chunk's key: `0.0.0` for three axes, `0` for a scalar.
fn chunk_key(rank: usize) -> String {
    vec!["0"; rank.max(1)].join(".")
}

/// Write `groups` as a Zarr v2 store at `path` (a folder, replaced whole: the store is built
/// beside it and renamed into place, so a crash leaves the old store or the new one).
pub fn write_store(path: &Path, attrs: Map<String, Json>, groups: &[Group]) -> Result<(), Diagnostic> {
    for g in groups {
        for a in &g.arrays {
            assert_eq!(a.dims.len(), a.shape.len(), "{}: a name per axis", a.name);
            assert_eq!(
                a.values.len(),
                a.shape.iter().product::<usize>(),
                "{}: values fill the shape",
                a.name
            );
        }
    }
    super::claim(path)?;
    let tmp = super::temporary(path);
    let fail = |e: std::io::Error| io_error(path, e);
    if tmp.exists() {
        // This process's own half-built store from an earlier failed attempt.
        std::fs::remove_dir_all(&tmp).map_err(fail)?;
    }
    let mut consolidated = Map::new();
    let mut put = |rel: &str, value: &Json| -> Result<(), Diagnostic> {
        let file = tmp.join(rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        std::fs::write(&file, serde_json::to_vec_pretty(value).expect("JSON")).map_err(fail)?;
        consolidated.insert(rel.to_string(), value.clone());
        Ok(())
    };
    put(".zgroup", &json!({ "zarr_format": 2 }))?;
    put(".zattrs", &Json::Object(attrs))?;
    for g in groups {
        put(&format!("{}/.zgroup", g.name), &json!({ "zarr_format": 2 }))?;
        put(&format!("{}/.zattrs", g.name), &Json::Object(g.attrs.clone()))?;
        for a in &g.arrays {
            let (zarray, zattrs) = array_meta(a);
            put(&format!("{}/{}/.zarray", g.name, a.name), &zarray)?;
            put(&format!("{}/{}/.zattrs", g.name, a.name), &zattrs)?;
            if a.values.len() > 0 {
                let chunk = tmp.join(&g.name).join(&a.name).join(chunk_key(a.shape.len()));
                std::fs::write(chunk, chunk_bytes(&a.values)).map_err(fail)?;
            }
        }
    }
    let meta = json!({ "zarr_consolidated_format": 1, "metadata": consolidated });
    std::fs::write(
        tmp.join(".zmetadata"),
        serde_json::to_vec_pretty(&meta).expect("JSON"),
    )
    .map_err(fail)?;
    // The old store (ours: `claim` said so) goes aside, the new one into its place, then the
    // old is removed: a crash in between leaves one of them whole.
    let old = path.with_file_name(format!(
        "{}.old",
        super::temporary(path)
            .file_name()
            .expect("a name")
            .to_string_lossy()
    ));
    let replaced = path.exists();
    if replaced {
        std::fs::rename(path, &old).map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    if replaced {
        std::fs::remove_dir_all(&old).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_has_its_metadata_and_one_chunk_per_array() {
        let dir = std::env::temp_dir().join(format!("vi-zarr-{}", std::process::id()));
        let store = dir.join("x.zarr");
        let groups = [Group {
            name: "posterior".into(),
            attrs: Map::new(),
            arrays: vec![
                Array {
                    name: "draw".into(),
                    dims: vec!["draw".into()],
                    shape: vec![3],
                    values: Values::I64(vec![0, 1, 2]),
                },
                Array {
                    name: "mu".into(),
                    dims: vec!["chain".into(), "draw".into()],
                    shape: vec![1, 3],
                    values: Values::F64(vec![0.5, -1.0, 2.0]),
                },
            ],
        }];
        write_store(&store, Map::new(), &groups).unwrap();
        let chunk = std::fs::read(store.join("posterior/mu/0.0")).unwrap();
        assert_eq!(chunk.len(), 24);
        assert_eq!(f64::from_le_bytes(chunk[8..16].try_into().unwrap()), -1.0);
        let meta: Json = serde_json::from_slice(&std::fs::read(store.join(".zmetadata")).unwrap()).unwrap();
        assert_eq!(
            meta["metadata"]["posterior/mu/.zattrs"]["_ARRAY_DIMENSIONS"],
            json!(["chain", "draw"])
        );
        assert_eq!(meta["metadata"]["posterior/draw/.zarray"]["dtype"], json!("<i8"));
        // Written again, the store is replaced whole.
        write_store(&store, Map::new(), &groups[..0]).unwrap();
        assert!(!store.join("posterior").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

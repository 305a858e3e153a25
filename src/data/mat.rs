//! MATLAB v5 `.mat` files (Frey faces): the numeric variable they hold.
//!
//! MATLAB data sets keep one example per column (Frey's `ff` is 560 pixels × 1965 faces), so a
//! matrix is read column by column: each column becomes a row of the array (`ff` gives
//! 1965 × 560). Arrays of higher rank keep MATLAB's dimension order with their last dimension
//! first, the same rule.
//!
//! The reader is written here rather than taken from the `matfile` crate: fuzzing found that
//! crate's parser overflowing its arithmetic on hostile sizes. What vi needs is small: the
//! 128-byte header, data elements (with the small-element form and zlib-compressed elements),
//! and real numeric matrices. Every size is checked against the bytes that are there.

use std::io::Read;

use crate::data::Array;
use crate::diag::Diagnostic;

/// Whether the bytes start like a MATLAB 5 file (its text header).
pub fn looks_like_mat(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MATLAB 5.0 MAT-file")
}

// Data types of elements (MATLAB's "mi" codes).
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Array classes 6 (double) to 15 (uint64) are numeric; 9 is uint8.
const NUMERIC_CLASSES: std::ops::RangeInclusive<u8> = 6..=15;
const UINT8_CLASS: u8 = 9;
const COMPLEX_FLAG: u32 = 0x0800;
const SPARSE_CLASS: u8 = 5;

/// A numeric variable as stored: MATLAB's dimensions and its values in column-major order.
struct Variable {
    name: String,
    dims: Vec<usize>,
    values: Vec<f64>,
    uint8: bool,
}

/// Byte order and bounds-checked reads.
#[derive(Clone, Copy)]
struct Reader {
    big_endian: bool,
}

impl Reader {
    fn u32(self, b: &[u8], at: usize) -> Result<u32, String> {
        let bytes: [u8; 4] = b
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or("the file ends inside an element's tag")?;
        Ok(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    /// The elements of one level: (data type, payload) pairs.
    fn elements(self, mut b: &[u8]) -> Result<Vec<(u32, &[u8])>, String> {
        let mut out = Vec::new();
        while b.len() >= 8 {
            let first = self.u32(b, 0)?;
            if first >> 16 != 0 {
                // The small form: type and size in one word, up to 4 bytes of data after it.
                let size = (first >> 16) as usize;
                if size > 4 {
                    return Err(format!("a small element claims {size} bytes (at most 4)"));
                }
                out.push((first & 0xffff, &b[4..4 + size]));
                b = &b[8..];
                continue;
            }
            let size = self.u32(b, 4)? as usize;
            let end = 8usize
                .checked_add(size)
                .filter(|&e| e <= b.len())
                .ok_or_else(|| format!("an element claims {size} bytes, more than the file has"))?;
            out.push((first, &b[8..end]));
            // Elements are padded to 8 bytes, except compressed ones; the last may lack it.
            let next = if first == MI_COMPRESSED {
                end
            } else {
                end.div_ceil(8) * 8
            };
            b = b.get(next..).unwrap_or(&[]);
        }
        Ok(out)
    }

    /// A numeric payload as f64 values.
    fn numbers(self, kind: u32, b: &[u8]) -> Result<Vec<f64>, String> {
        macro_rules! read {
            ($t:ty) => {{
                const W: usize = std::mem::size_of::<$t>();
                if !b.len().is_multiple_of(W) {
                    return Err(format!(
                        "{} bytes do not make whole {}-byte numbers",
                        b.len(),
                        W
                    ));
                }
                b.chunks_exact(W)
                    .map(|c| {
                        let a: [u8; W] = c.try_into().expect("W bytes");
                        let v = if self.big_endian {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        };
                        v as f64
                    })
                    .collect()
            }};
        }
        Ok(match kind {
            MI_INT8 => read!(i8),
            MI_UINT8 => read!(u8),
            MI_INT16 => read!(i16),
            MI_UINT16 => read!(u16),
            MI_INT32 => read!(i32),
            MI_UINT32 => read!(u32),
            MI_SINGLE => read!(f32),
            MI_DOUBLE => read!(f64),
            MI_INT64 => read!(i64),
            MI_UINT64 => read!(u64),
            other => return Err(format!("data type {other} is not a numeric type")),
        })
    }

    /// A matrix element's variable, if it is a real numeric array.
    fn matrix(self, b: &[u8]) -> Result<Option<Variable>, String> {
        let parts = self.elements(b)?;
        let [(_, flags), (_, dims), (_, name), rest @ ..] = parts.as_slice() else {
            return Err("a matrix lacks its flags, dimensions or name".into());
        };
        let flags = self.u32(flags, 0)?;
        let class = (flags & 0xff) as u8;
        if !NUMERIC_CLASSES.contains(&class) || class == SPARSE_CLASS {
            return Ok(None);
        }
        let name = String::from_utf8_lossy(name).to_string();
        if flags & COMPLEX_FLAG != 0 {
            return Err(format!("variable `{name}` is complex; vi reads real numbers"));
        }
        let dims: Vec<usize> = self
            .numbers(MI_INT32, dims)?
            .into_iter()
            .map(|d| {
                if d >= 0.0 {
                    Ok(d as usize)
                } else {
                    Err(format!("variable `{name}` has a negative dimension"))
                }
            })
            .collect::<Result<_, _>>()?;
        let Some((kind, real)) = rest.first() else {
            return Err(format!("variable `{name}` has no values"));
        };
        let values = self.numbers(*kind, real)?;
        let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count != Some(values.len()) {
            return Err(format!(
                "variable `{name}` claims dimensions {dims:?} but holds {} values",
                values.len()
            ));
        }
        Ok(Some(Variable {
            name,
            dims,
            values,
            uint8: class == UINT8_CLASS,
        }))
    }

    /// Every real numeric variable in the top-level elements `b`.
    fn variables(self, b: &[u8], depth: usize) -> Result<Vec<Variable>, String> {
        let mut out = Vec::new();
        for (kind, payload) in self.elements(b)? {
            match kind {
                MI_MATRIX => out.extend(self.matrix(payload)?),
                MI_COMPRESSED if depth == 0 => {
                    // zlib around more elements; unpacked no further than memory allows.
                    let cap = crate::limits::available_bytes().map_or(u64::MAX / 2, |r| r / 4);
                    let mut unpacked = Vec::new();
                    flate2::read::ZlibDecoder::new(payload)
                        .take(cap + 1)
                        .read_to_end(&mut unpacked)
                        .map_err(|e| format!("a compressed element does not decompress: {e}"))?;
                    if unpacked.len() as u64 > cap {
                        return Err("a compressed element unpacks to more than the memory there is".into());
                    }
                    out.extend(self.variables(&unpacked, depth + 1)?);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Parse a MAT file holding one numeric variable.
pub fn parse(bytes: &[u8], path: &str) -> Result<Array, Diagnostic> {
    let bad = |why: String| {
        Diagnostic::new(
            "vi::data::bad_mat",
            format!("`{path}` is not a MATLAB file vi can read"),
        )
        .help(why)
    };
    if bytes.len() < 128 || !bytes.starts_with(b"MATLAB 5.0") {
        return Err(bad(
            "it lacks the 128-byte header of a MATLAB v5 file (v7.3 files are HDF5: save with `-v7`)".into(),
        ));
    }
    let reader = match &bytes[126..128] {
        b"IM" => Reader { big_endian: false },
        b"MI" => Reader { big_endian: true },
        _ => return Err(bad("its header has no byte-order mark".into())),
    };
    let variables = reader.variables(&bytes[128..], 0).map_err(bad)?;
    let variable = match variables.as_slice() {
        [_] => variables.into_iter().next().expect("one"),
        [] => return Err(bad("it holds no real numeric variable".into())),
        many => {
            let names: Vec<&str> = many.iter().map(|v| v.name.as_str()).collect();
            return Err(bad(format!(
                "it holds {} variables ({}); save the one to fit in a file of its own",
                many.len(),
                names.join(", ")
            )));
        }
    };
    // Column-major storage read as is is the row-major array of the reversed dimensions.
    let mut shape = variable.dims;
    shape.reverse();
    while shape.len() > 1 && shape.last() == Some(&1) {
        shape.pop();
    }
    super::all_finite(
        &variable.values,
        &shape,
        &format!("`{path}`, variable {}", variable.name),
    )?;
    Ok(Array {
        shape,
        values: variable.values,
        origin: format!("{path}, variable {}", variable.name),
        bytes: variable.uint8,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MAT v5 file with one variable: a `class` array of `dims` stored as `kind` (`payload`).
    fn mat(class: u32, dims: &[i32], kind: u32, payload: &[u8], compress: bool) -> Vec<u8> {
        fn element(kind: u32, data: &[u8]) -> Vec<u8> {
            let mut e = kind.to_le_bytes().to_vec();
            e.extend((data.len() as u32).to_le_bytes());
            e.extend(data);
            e.resize(e.len().div_ceil(8) * 8, 0);
            e
        }
        let mut body = element(MI_UINT32, &[class.to_le_bytes(), 0u32.to_le_bytes()].concat());
        body.extend(element(
            MI_INT32,
            &dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>(),
        ));
        // The name in the small-element form.
        body.extend((MI_INT8 | (2 << 16)).to_le_bytes());
        body.extend(*b"ff\0\0");
        body.extend(element(kind, payload));
        let mut matrix = element(MI_MATRIX, &body);
        if compress {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut z, &matrix).unwrap();
            let packed = z.finish().unwrap();
            matrix = MI_COMPRESSED.to_le_bytes().to_vec();
            matrix.extend((packed.len() as u32).to_le_bytes());
            matrix.extend(packed);
        }
        let mut file = b"MATLAB 5.0 MAT-file, vi test".to_vec();
        file.resize(116, b' ');
        file.extend([0u8; 8]);
        file.extend(0x0100u16.to_le_bytes());
        file.extend(*b"IM");
        file.extend(matrix);
        file
    }

    #[test]
    fn reads_matrices_column_by_column_plain_and_compressed() {
        let doubles: Vec<u8> = (1..=6).flat_map(|v| f64::from(v).to_le_bytes()).collect();
        for compress in [false, true] {
            let a = parse(&mat(6, &[2, 3], MI_DOUBLE, &doubles, compress), "t.mat").unwrap();
            // MATLAB's 2 × 3 matrix, one example per column: 3 rows of 2.
            assert_eq!(a.shape, vec![3, 2]);
            assert_eq!(a.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
            assert!(!a.bytes);
        }
        let bytes = parse(&mat(9, &[2, 2], MI_UINT8, &[0, 1, 254, 255], false), "t.mat").unwrap();
        assert!(bytes.bytes);
        assert_eq!(bytes.values, vec![0.0, 1.0, 254.0, 255.0]);
    }

    #[test]
    fn hostile_sizes_are_diagnostics() {
        let doubles: Vec<u8> = (1..=6).flat_map(|v| f64::from(v).to_le_bytes()).collect();
        // Dimensions whose product overflows, or disagrees with the values.
        for dims in [[i32::MAX, i32::MAX], [2, 2], [-1, 6]] {
            let e = parse(&mat(6, &dims, MI_DOUBLE, &doubles, false), "t.mat").unwrap_err();
            assert_eq!(e.code, "vi::data::bad_mat");
        }
        // An element claiming more bytes than the file has.
        let mut f = mat(6, &[2, 3], MI_DOUBLE, &doubles, false);
        f[132..136].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&f, "t.mat").unwrap_err().code, "vi::data::bad_mat");
        // Truncated anywhere.
        let f = mat(6, &[2, 3], MI_DOUBLE, &doubles, true);
        for cut in 0..f.len() {
            let _ = parse(&f[..cut], "t.mat");
        }
    }

    #[test]
    fn reads_the_frey_faces() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/frey/frey_rawface.mat");
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipped: no {}", path.display());
            return;
        };
        let a = parse(&bytes, "frey_rawface.mat").unwrap();
        assert_eq!(a.shape, vec![1965, 560]);
        assert!(a.bytes);
        // Figures from reading the file's bytes independently (Python, struct).
        assert_eq!(a.values.iter().sum::<f64>(), 169_968_741.0);
        assert_eq!(a.values[..5], [81.0, 136.0, 167.0, 185.0, 187.0]);
        assert_eq!(a.values[560..565], [85.0, 138.0, 165.0, 184.0, 187.0]);
    }
}

//! NumPy `.npy` arrays of any real or integer dtype, C or Fortran order.

use npyz::{DType, NpyFile, Order, TypeChar};

use crate::data::Array;
use crate::diag::Diagnostic;

/// The header of an array vi reads is a flat Python dict: `{'descr': '<f8', 'fortran_order':
/// False, 'shape': (3, 2), }`. npyz's parser takes exponential time on deeply nested brackets
/// (found by fuzzing), so anything else is refused before it gets there.
fn plain_header(bytes: &[u8]) -> Result<(), String> {
    let not_npy = || "the file does not start with an .npy header".to_string();
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err(not_npy());
    }
    let (start, len): (usize, usize) = match bytes[6] {
        1 => (10, usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        2 | 3 if bytes.len() >= 12 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        v => return Err(format!(".npy format version {v} is not one vi reads (1, 2 or 3)")),
    };
    let header = bytes
        .get(start..start.saturating_add(len))
        .ok_or_else(|| "the header runs past the end of the file".to_string())?;
    let count = |c: u8| header.iter().filter(|&&b| b == c).count();
    if count(b'{') != 1 || count(b'}') != 1 || count(b'(') > 1 || count(b')') > 1 || count(b'[') > 0 {
        return Err("its header is not a plain array's (structured dtypes are not supported)".into());
    }
    // npyz multiplies the shape unchecked (found by fuzzing): a shape whose product overflows,
    // or asks for more values than the file has bytes, is refused before it gets there.
    let text = String::from_utf8_lossy(header);
    if let Some(dims) = text
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(d, _)| d)
    {
        let mut values: u64 = 1;
        for d in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let n = d.parse::<u64>().ok().and_then(|n| values.checked_mul(n));
            match n {
                Some(n) if n <= bytes.len() as u64 => values = n,
                _ => {
                    return Err(format!(
                        "its header's shape ({dims}) holds more values than the file's {} bytes",
                        bytes.len()
                    ))
                }
            }
        }
    }
    Ok(())
}

pub fn parse(bytes: &[u8], path: &str) -> Result<Array, Diagnostic> {
    let bad =
        |why: String| Diagnostic::new("vi::data::bad_npy", format!("cannot read `{path}` as .npy")).help(why);
    plain_header(bytes).map_err(bad)?;
    let npy = NpyFile::new(bytes).map_err(|e| bad(e.to_string()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let DType::Plain(ts) = npy.dtype() else {
        return Err(bad(
            "only plain numeric arrays are supported, not structured dtypes".into(),
        ));
    };
    let size = ts.size_field();
    let read_err = |e: std::io::Error| bad(e.to_string());
    let mut values: Vec<f64> = match (ts.type_char(), size) {
        (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(read_err)?,
        (TypeChar::Float, 4) => npy
            .into_vec::<f32>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, 8) => npy
            .into_vec::<i64>()
            .map_err(read_err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Int, 4) => npy
            .into_vec::<i32>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, 2) => npy
            .into_vec::<i16>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, 1) => npy
            .into_vec::<i8>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Uint, 8) => npy
            .into_vec::<u64>()
            .map_err(read_err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Uint, 4) => npy
            .into_vec::<u32>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Uint, 2) => npy
            .into_vec::<u16>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Uint, 1) => npy
            .into_vec::<u8>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Bool, 1) => npy
            .into_vec::<bool>()
            .map_err(read_err)?
            .into_iter()
            .map(|b| f64::from(u8::from(b)))
            .collect(),
        (c, s) => {
            return Err(bad(format!(
                "unsupported dtype {c:?}{s}; use a float or integer array"
            )))
        }
    };
    if order == Order::Fortran && shape.len() > 1 {
        values = fortran_to_c(&values, &shape);
    }
    super::all_finite(&values, &shape, &format!("`{path}`"))?;
    Ok(Array {
        shape,
        values,
        origin: path.to_string(),
        bytes: ts.type_char() == TypeChar::Uint && size == 1,
        lines: Vec::new(),
    })
}

/// Reorder column-major values into row-major.
fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let n = values.len();
    let rank = shape.len();
    let mut out = vec![0.0; n];
    let mut idx = vec![0usize; rank];
    for v in out.iter_mut() {
        // `idx` is the row-major multi-index of this output position; find its column-major offset.
        let mut off = 0;
        let mut stride = 1;
        for k in 0..rank {
            off += idx[k] * stride;
            stride *= shape[k];
        }
        *v = values[off];
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_larger_than_the_file_is_a_diagnostic() {
        // (6, 6459797423555346431) and (6, 7392445620511834…): products that overflow (the
        // fuzzer's crashes, inside npyz before vi saw the shape).
        let crashes: [&[u8]; 2] = [
            include_bytes!("../../tests/fuzz_corpus/npy/crash-087b0679f539285dda400244c7c8f5f8d50d602e"),
            include_bytes!("../../tests/fuzz_corpus/npy/crash-fb1a355e7e4d54a631bb16d39a467349117a6357"),
        ];
        for crash in crashes {
            let d = parse(crash, "x.npy").expect_err("refused");
            assert_eq!(d.code, "vi::data::bad_npy");
            assert!(
                d.help.as_deref().is_some_and(|h| h.contains("holds more values")),
                "{d:?}"
            );
        }
    }

    #[test]
    fn round_trips_an_f64_matrix() {
        let mut buf = Vec::new();
        {
            use npyz::WriterBuilder;
            let mut w = npyz::WriteOptions::<f64>::new()
                .default_dtype()
                .shape(&[2, 3])
                .writer(&mut buf)
                .begin_nd()
                .unwrap();
            w.extend([1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
            w.finish().unwrap();
        }
        let a = parse(&buf, "m.npy").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn fortran_order_is_transposed_into_row_major() {
        // [[1, 2, 3], [4, 5, 6]] stored column-major.
        let c = fortran_to_c(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], &[2, 3]);
        assert_eq!(c, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn garbage_is_a_diagnostic() {
        assert_eq!(
            parse(b"not an npy file", "x.npy").unwrap_err().code,
            "vi::data::bad_npy"
        );
    }
}

//! IDX files (MNIST, Fashion-MNIST): a big-endian header of dimension sizes, then the values.

use crate::data::Array;
use crate::diag::Diagnostic;

/// Whether the bytes start like an IDX file: two zero bytes, a known type code, a rank of 1–4.
pub fn looks_like_idx(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[0] == 0
        && bytes[1] == 0
        && type_size(bytes[2]).is_some()
        && (1..=4).contains(&bytes[3])
}

fn type_size(code: u8) -> Option<usize> {
    match code {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

/// Parse an (already gunzipped) IDX file.
pub fn parse(bytes: &[u8], path: &str) -> Result<Array, Diagnostic> {
    let bad = |why: String| {
        Diagnostic::new("vi::data::bad_idx", format!("`{path}` is not a valid IDX file")).help(why)
    };
    if !looks_like_idx(bytes) {
        return Err(bad(
            "an IDX file starts with 0x00 0x00, a type code (0x08 for bytes) and its rank".into(),
        ));
    }
    let code = bytes[2];
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad(format!(
            "the header needs {header} bytes, the file has {}",
            bytes.len()
        )));
    }
    let shape: Vec<usize> = (0..rank)
        .map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes")) as usize)
        .collect();
    let size = type_size(code).expect("checked by looks_like_idx");
    let body = &bytes[header..];
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(count) = count.filter(|c| c.checked_mul(size).is_some()) else {
        return Err(bad(format!(
            "the header's dimensions {shape:?} are impossibly large"
        )));
    };
    if body.len() != count * size {
        return Err(bad(format!(
            "the header promises {count} values of {size} byte(s) ({} bytes), the file has {} after the header",
            count * size,
            body.len()
        )));
    }
    let values: Vec<f64> = match code {
        0x08 => body.iter().map(|&b| f64::from(b)).collect(),
        0x09 => body.iter().map(|&b| f64::from(b as i8)).collect(),
        0x0B => body
            .chunks_exact(2)
            .map(|c| f64::from(i16::from_be_bytes([c[0], c[1]])))
            .collect(),
        0x0C => body
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_be_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        0x0D => body
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_be_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        _ => body
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    super::all_finite(&values, &shape, &format!("`{path}`"))?;
    Ok(Array {
        shape,
        values,
        origin: path.to_string(),
        bytes: code == 0x08,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tiny_image_file() {
        let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        bytes.extend([0, 255, 128, 7]);
        let a = parse(&bytes, "t").unwrap();
        assert_eq!(a.shape, vec![2, 1, 2]);
        assert_eq!(a.values, vec![0.0, 255.0, 128.0, 7.0]);
        assert!(a.bytes);
        bytes.pop();
        assert_eq!(parse(&bytes, "t").unwrap_err().code, "vi::data::bad_idx");
    }
}

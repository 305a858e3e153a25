//! MATLAB v5 `.mat` files (Frey faces): the numeric variable they hold.
//!
//! MATLAB data sets keep one example per column (Frey's `ff` is 560 pixels × 1965 faces), so a
//! matrix is read column by column: each column becomes a row of the array (`ff` gives
//! 1965 × 560). Arrays of higher rank keep MATLAB's dimension order with their last dimension
//! first, the same rule.

use crate::data::Array;
use crate::diag::Diagnostic;

/// Whether the bytes start like a MATLAB 5 file (its text header).
pub fn looks_like_mat(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MATLAB 5.0 MAT-file")
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
    let mat = matfile::MatFile::parse(bytes)
        .map_err(|e| bad(format!("{e:?}; vi reads MATLAB v5 files with numeric arrays")))?;
    let arrays = mat.arrays();
    let array = match arrays.as_slice() {
        [one] => one,
        [] => return Err(bad("it holds no numeric variable".into())),
        many => {
            let names: Vec<&str> = many.iter().map(|a| a.name()).collect();
            return Err(bad(format!(
                "it holds {} variables ({}); save the one to fit in a file of its own",
                many.len(),
                names.join(", ")
            )));
        }
    };
    use matfile::NumericData as N;
    let (values, bytes): (Vec<f64>, bool) = match array.data() {
        N::UInt8 { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), true),
        N::Int8 { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), false),
        N::Int16 { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), false),
        N::UInt16 { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), false),
        N::Int32 { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), false),
        N::UInt32 { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), false),
        N::Int64 { real, .. } => (real.iter().map(|&v| v as f64).collect(), false),
        N::UInt64 { real, .. } => (real.iter().map(|&v| v as f64).collect(), false),
        N::Single { real, .. } => (real.iter().map(|&v| f64::from(v)).collect(), false),
        N::Double { real, .. } => (real.clone(), false),
    };
    // Column-major storage read as is is the row-major array of the reversed dimensions.
    let mut shape = array.size().clone();
    shape.reverse();
    while shape.len() > 1 && shape.last() == Some(&1) {
        shape.pop();
    }
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(values.len()) {
        return Err(bad(format!(
            "variable `{}` claims {:?} values but holds {}",
            array.name(),
            array.size(),
            values.len()
        )));
    }
    super::all_finite(&values, &shape, &format!("`{path}`, variable {}", array.name()))?;
    Ok(Array {
        shape,
        values,
        origin: format!("{path}, variable {}", array.name()),
        bytes,
        lines: Vec::new(),
    })
}

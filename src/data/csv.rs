//! CSV tables (a header row names the columns) and whitespace-separated matrices (`.amat`).
//!
//! Every cell must be a finite number. Faults point at the offending cell in the file itself.

use crate::data::Array;
use crate::diag::{source, Diagnostic, Source};
use crate::syntax::Span;

/// A numeric table with named columns, row-major.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: String,
    pub columns: Vec<String>,
    pub rows: usize,
    /// `rows * columns.len()` values, row-major.
    pub values: Vec<f64>,
    /// True when the file had no header row and the columns are named by position.
    pub headerless: bool,
    /// The file's line of each row.
    pub lines: Vec<usize>,
}

impl Table {
    fn column(&self, j: usize) -> Vec<f64> {
        let w = self.columns.len();
        (0..self.rows).map(|i| self.values[i * w + j]).collect()
    }

    fn take(&self, cols: &[usize], what: &str) -> Array {
        let w = self.columns.len();
        let mut values = Vec::with_capacity(self.rows * cols.len());
        for i in 0..self.rows {
            for &j in cols {
                values.push(self.values[i * w + j]);
            }
        }
        let shape = if cols.len() == 1 {
            vec![self.rows]
        } else {
            vec![self.rows, cols.len()]
        };
        Array {
            shape,
            values,
            origin: format!("{}, {what}", self.path),
            bytes: false,
            lines: self.lines.clone(),
        }
    }

    /// The column called exactly `name`, as a vector.
    pub fn column_named(&self, name: &str) -> Option<Array> {
        let j = self.columns.iter().position(|c| c == name)?;
        Some(Array {
            shape: vec![self.rows],
            values: self.column(j),
            origin: format!("{}, column {name}", self.path),
            bytes: false,
            lines: self.lines.clone(),
        })
    }

    /// Columns `name0, name1, ...` (name compared without case), as a matrix.
    pub fn numbered_columns(&self, name: &str) -> Option<Array> {
        let lower = name.to_lowercase();
        let mut found: Vec<(usize, usize)> = self
            .columns
            .iter()
            .enumerate()
            .filter_map(|(j, c)| {
                let rest = c.to_lowercase().strip_prefix(&lower)?.to_string();
                let k: usize = rest.parse().ok()?;
                (!rest.is_empty() && rest.chars().all(|ch| ch.is_ascii_digit())).then_some((k, j))
            })
            .collect();
        if found.is_empty() {
            return None;
        }
        found.sort();
        let cols: Vec<usize> = found.iter().map(|(_, j)| *j).collect();
        let first = &self.columns[cols[0]];
        let last = &self.columns[cols[cols.len() - 1]];
        let mut a = self.take(&cols, &format!("columns {first}..{last}"));
        if a.shape.len() == 1 {
            a.shape.push(1);
        }
        Some(a)
    }

    /// Columns chosen by name, position, or a half-open position range `a..b`.
    pub fn columns_named(&self, spec: &[String]) -> Result<Array, Diagnostic> {
        let mut cols = Vec::new();
        for item in spec {
            if let Some((a, b)) = item.split_once("..") {
                match (a.parse::<usize>(), b.parse::<usize>()) {
                    (Ok(a), Ok(b)) if a < b && b <= self.columns.len() => cols.extend(a..b),
                    _ => return Err(self.no_column(item)),
                }
            } else if let Some(j) = self.columns.iter().position(|c| c == item) {
                cols.push(j);
            } else if let Ok(j) = item.parse::<usize>() {
                if j >= self.columns.len() {
                    return Err(self.no_column(item));
                }
                cols.push(j);
            } else {
                return Err(self.no_column(item));
            }
        }
        let what = match spec {
            [one] if !one.contains("..") => format!("column {one}"),
            _ => format!("columns {}", spec.join(",")),
        };
        let mut a = self.take(&cols, &what);
        if (cols.len() > 1 || spec.iter().any(|s| s.contains(".."))) && a.shape.len() == 1 {
            a.shape.push(1);
        }
        Ok(a)
    }

    /// The whole table as a matrix (a vector if it has one column).
    pub fn whole(&self) -> Result<Array, Diagnostic> {
        let cols: Vec<usize> = (0..self.columns.len()).collect();
        Ok(self.take(&cols, "all columns"))
    }

    fn no_column(&self, item: &str) -> Diagnostic {
        let near = crate::diag::did_you_mean(item, self.columns.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        Diagnostic::new(
            "vi::data::no_column",
            format!("`{}` has no column `{item}`", self.path),
        )
        .help(format!(
            "{near}its columns are {}; choose by name, by position (0-based) or by a range `a..b`",
            preview(&self.columns)
        ))
    }
}

pub(crate) fn preview(cols: &[String]) -> String {
    if cols.len() <= 8 {
        cols.join(", ")
    } else {
        format!(
            "{}, …, {} ({} in all)",
            cols[..4].join(", "),
            cols[cols.len() - 1],
            cols.len()
        )
    }
}

/// Parse CSV text with a header row. A first row that is all numbers is taken as data, and the
/// columns are then named by position (`0`, `1`, ...).
pub fn parse(bytes: &[u8], path: &str) -> Result<Table, Diagnostic> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| crate::diag::not_utf8("vi::data::not_text", path, bytes, "a CSV file"))?;
    let src = source(path, text.to_string());
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let first = match records.next() {
        None => {
            return Err(Diagnostic::new("vi::data::empty", format!("`{path}` is empty"))
                .help("a CSV file needs a header row naming its columns, then one row per data point"))
        }
        Some(r) => r.map_err(|e| csv_error(path, e))?,
    };
    let headerless = first.iter().all(|c| c.parse::<f64>().is_ok());
    let columns: Vec<String> = if headerless {
        (0..first.len()).map(|j| j.to_string()).collect()
    } else {
        first.iter().map(str::to_string).collect()
    };
    let width = columns.len();
    let mut values = Vec::new();
    let mut rows = 0;
    let mut lines = Vec::new();
    let mut pending = if headerless { Some(Ok(first)) } else { None };
    loop {
        let record = match pending.take().or_else(|| records.next()) {
            None => break,
            Some(r) => r.map_err(|e| csv_error(path, e))?,
        };
        let line_start = record.position().map_or(0, |p| p.byte() as usize);
        let line_no = record.position().map_or(0, |p| p.line() as usize);
        if record.len() == 1 && record.get(0) == Some("") {
            continue; // a blank line
        }
        if record.len() != width {
            let span = line_span(text, line_start);
            return Err(Diagnostic::new(
                "vi::data::ragged_row",
                format!(
                    "line {} of `{path}` has {} cells, the header has {width}",
                    line_no,
                    record.len()
                ),
            )
            .primary(span, format!("{} cells", record.len()))
            .help("every row needs one value per column")
            .with_source(&src));
        }
        for (j, cell) in record.iter().enumerate() {
            let v = match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                Ok(_) => {
                    return Err(cell_error(
                        &src,
                        text,
                        line_start,
                        j,
                        line_no,
                        &columns[j],
                        path,
                        "is not finite",
                    )
                    .help("NaN and infinite values are not data; remove the row or impute the value"))
                }
                Err(_) => {
                    return Err(cell_error(
                        &src,
                        text,
                        line_start,
                        j,
                        line_no,
                        &columns[j],
                        path,
                        "is not a number",
                    )
                    .help(if cell.is_empty() {
                        "the cell is empty; missing values are not supported".to_string()
                    } else {
                        format!("`{cell}` cannot be read as a number")
                    }))
                }
            };
            values.push(v);
        }
        rows += 1;
        lines.push(line_no);
    }
    if rows == 0 {
        return Err(
            Diagnostic::new("vi::data::empty", format!("`{path}` has a header but no rows"))
                .help("add one row per data point under the header"),
        );
    }
    Ok(Table {
        path: path.to_string(),
        columns,
        rows,
        values,
        headerless,
        lines,
    })
}

#[allow(clippy::too_many_arguments)]
fn cell_error(
    src: &Source,
    text: &str,
    line_start: usize,
    j: usize,
    line_no: usize,
    column: &str,
    path: &str,
    what: &str,
) -> Diagnostic {
    let span = cell_span(text, line_start, j);
    Diagnostic::new(
        "vi::data::bad_cell",
        format!("line {line_no}, column `{column}` of `{path}` {what}"),
    )
    .primary(span, what.to_string())
    .with_source(src)
}

fn csv_error(path: &str, e: ::csv::Error) -> Diagnostic {
    Diagnostic::new("vi::data::bad_csv", format!("`{path}` is not valid CSV")).help(e.to_string())
}

/// The span of the line starting at `start` (without its newline).
fn line_span(text: &str, start: usize) -> Span {
    let end = text[start..].find('\n').map_or(text.len(), |k| start + k);
    let end = if end > start && text[..end].ends_with('\r') {
        end - 1
    } else {
        end
    };
    Span::new(start, end)
}

/// The span of cell `j` on the line starting at `start` (quotes respected).
fn cell_span(text: &str, start: usize, j: usize) -> Span {
    let line = line_span(text, start);
    let bytes = &text.as_bytes()[line.start..line.end];
    let (mut field, mut begin, mut quoted) = (0, 0, false);
    for (k, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                if field == j {
                    return trim(text, Span::new(line.start + begin, line.start + k));
                }
                field += 1;
                begin = k + 1;
            }
            _ => {}
        }
    }
    trim(text, Span::new(line.start + begin, line.end))
}

fn trim(text: &str, s: Span) -> Span {
    let cell = &text[s.start..s.end];
    let lead = cell.len() - cell.trim_start().len();
    let trail = cell.len() - cell.trim_end().len();
    if lead + trail >= cell.len() {
        s
    } else {
        Span::new(s.start + lead, s.end - trail)
    }
}

/// A matrix of whitespace-separated numbers, one row a line (Larochelle's `.amat`).
pub fn parse_whitespace_matrix(bytes: &[u8], path: &str) -> Result<Array, Diagnostic> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Diagnostic::new("vi::data::not_text", format!("`{path}` is not a text file"))
            .help("an .amat file holds numbers separated by spaces, one row per line")
    })?;
    let mut values = Vec::new();
    let mut width = None;
    let mut rows = 0;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let before = values.len();
        for tok in line.split_whitespace() {
            match tok.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(Diagnostic::new(
                        "vi::data::bad_cell",
                        format!("line {} of `{path}` has `{tok}`, not a finite number", i + 1),
                    )
                    .help("every entry must be a number"))
                }
            }
        }
        let n = values.len() - before;
        if n == 0 {
            continue;
        }
        match width {
            None => width = Some(n),
            Some(w) if w != n => {
                return Err(Diagnostic::new(
                    "vi::data::ragged_row",
                    format!(
                        "line {} of `{path}` has {n} numbers, the first line has {w}",
                        i + 1
                    ),
                )
                .help("every row needs the same number of entries"))
            }
            _ => {}
        }
        rows += 1;
        lines.push(i + 1);
    }
    let Some(width) = width else {
        return Err(
            Diagnostic::new("vi::data::empty", format!("`{path}` is empty")).help("the file has no numbers")
        );
    };
    Ok(Array {
        shape: vec![rows, width],
        values,
        origin: path.to_string(),
        bytes: false,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_by_name_and_number() {
        let t = parse(b"x0,x1,y\n1,2,3\n4,5,6\n", "t.csv").unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(t.column_named("y").unwrap().values, vec![3.0, 6.0]);
        let x = t.numbered_columns("X").unwrap();
        assert_eq!(x.shape, vec![2, 2]);
        assert_eq!(x.values, vec![1.0, 2.0, 4.0, 5.0]);
        let w = t.columns_named(&["0..2".into()]).unwrap();
        assert_eq!(w.shape, vec![2, 2]);
    }

    #[test]
    fn headerless_tables_are_named_by_position() {
        let t = parse(b"1,2\n3,4\n", "t.csv").unwrap();
        assert!(t.headerless);
        assert_eq!(t.rows, 2);
        assert_eq!(t.column_named("1").unwrap().values, vec![2.0, 4.0]);
    }

    #[test]
    fn bad_cells_point_at_the_cell() {
        let text = "x,y\n1,2\n3, abc\n";
        let e = parse(text.as_bytes(), "t.csv").unwrap_err();
        assert_eq!(e.code, "vi::data::bad_cell");
        let s = e.primary_span().unwrap();
        assert_eq!(&text[s.start..s.end], "abc");
        assert!(e.message.contains("line 3"), "{}", e.message);
        let e = parse(b"x,y\n1,2\n3\n", "t.csv").unwrap_err();
        assert_eq!(e.code, "vi::data::ragged_row");
        let e = parse(b"x\nnan\n", "t.csv").unwrap_err();
        assert!(e.message.contains("not finite"));
    }

    #[test]
    fn a_lone_carriage_return_does_not_crash() {
        // Found by the fuzz test: a record that is only `\r` at the end of the file.
        for text in [&b"x,y\r\n1\r"[..], b"x\n\r", b"x,y\n1,2\n3\r"] {
            let _ = parse(text, "t.csv");
        }
    }

    #[test]
    fn amat_matrices_parse() {
        let a = parse_whitespace_matrix(b"0 1 0\n1 1 0\n", "m.amat").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
    }
}

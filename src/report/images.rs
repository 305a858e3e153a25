//! Image grids as PNG files: reconstructions beside their inputs, prior samples, the manifold,
//! each captioned (in `font8x8`'s public-domain 8×8 glyphs: no font files or system libraries).

use std::path::Path;

use crate::diag::Diagnostic;
use crate::infer::pictures::Pictures;

/// Grey level between tiles.
const GAP_LEVEL: u8 = 128;
/// Pixels between tiles.
const GAP: usize = 1;
/// Tiles per row of the reconstruction and sample grids.
const COLUMNS: usize = 8;

/// A grid of equally sized grey tiles, `columns` across, each pixel drawn `zoom × zoom`.
struct Grid {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Grid {
    fn new(tiles: &[Vec<u8>], h: usize, w: usize, columns: usize, zoom: usize) -> Grid {
        let rows = tiles.len().div_ceil(columns).max(1);
        let (th, tw) = (h * zoom, w * zoom);
        let width = columns * tw + (columns + 1) * GAP;
        let height = rows * th + (rows + 1) * GAP;
        let mut pixels = vec![GAP_LEVEL; width * height];
        for (k, tile) in tiles.iter().enumerate() {
            let (r, c) = (k / columns, k % columns);
            let (y0, x0) = (GAP + r * (th + GAP), GAP + c * (tw + GAP));
            for y in 0..th {
                for x in 0..tw {
                    pixels[(y0 + y) * width + x0 + x] = tile[(y / zoom) * w + x / zoom];
                }
            }
        }
        Grid {
            width,
            height,
            pixels,
        }
    }

    /// The grid under a white band with `text` in black, wrapped to the grid's width.
    fn captioned(self, text: &str) -> Grid {
        const GLYPH: usize = 8;
        const PAD: usize = 4;
        let per_line = ((self.width.saturating_sub(2 * PAD)) / GLYPH).max(1);
        let lines = wrap(text, per_line);
        let band = lines.len() * (GLYPH + 2) + 2 * PAD;
        let mut pixels = vec![255u8; self.width * band];
        for (r, line) in lines.iter().enumerate() {
            for (c, ch) in line.chars().enumerate() {
                let glyph =
                    font8x8::legacy::BASIC_LEGACY[if ch.is_ascii() { ch as usize } else { b'?' as usize }];
                for (y, bits) in glyph.iter().enumerate() {
                    for x in 0..GLYPH {
                        if bits >> x & 1 == 1 {
                            let (py, px) = (PAD + r * (GLYPH + 2) + y, PAD + c * GLYPH + x);
                            if px < self.width {
                                pixels[py * self.width + px] = 0;
                            }
                        }
                    }
                }
            }
        }
        pixels.extend(self.pixels);
        Grid {
            width: self.width,
            height: self.height + band,
            pixels,
        }
    }

    fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()?.write_image_data(&self.pixels)?;
        }
        Ok(bytes)
    }
}

/// Words into lines of at most `width` characters (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
            word = word.chars().skip(width).collect();
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += &word;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Grey levels to bytes: [0, 1] as is, or stretched from `range`.
fn levels(img: &[f64], range: (f64, f64)) -> Vec<u8> {
    let (lo, hi) = range;
    let span = if hi > lo { hi - lo } else { 1.0 };
    img.iter()
        .map(|v| (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Small images are enlarged so that a tile is at least 24 pixels high.
fn zoom(height: usize) -> usize {
    24usize.div_ceil(height).max(1)
}

fn encode_error(path: &Path, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new("vi::io::output", format!("cannot write `{}`", path.display()))
        .help(format!("{e}; choose another folder with `--out DIR`"))
}

/// Write `reconstructions.png` (rows of inputs above rows of their reconstructions),
/// `samples.png` and, for a two-dimensional code, `manifold.png` into `dir`, each captioned
/// with what it shows of `model`; returns the names.
pub fn write_pictures(dir: &Path, model: &str, p: &Pictures) -> Result<Vec<String>, Diagnostic> {
    let range = if p.unit {
        (0.0, 1.0)
    } else {
        let all = p.inputs.iter().flatten();
        all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
    };
    let z = zoom(p.height);
    let to_tiles = |imgs: &[Vec<f64>]| imgs.iter().map(|i| levels(i, range)).collect::<Vec<_>>();
    let mut written = Vec::new();
    let mut put = |name: &str, grid: Grid| -> Result<(), Diagnostic> {
        let path = dir.join(name);
        let bytes = grid.png().map_err(|e| encode_error(&path, e))?;
        crate::store::write_atomic(&path, &bytes)?;
        written.push(name.to_string());
        Ok(())
    };

    // Inputs and reconstructions interleaved by rows of COLUMNS.
    let inputs = to_tiles(&p.inputs);
    let recons = to_tiles(&p.reconstructions);
    let mut tiles = Vec::new();
    for (a, b) in inputs.chunks(COLUMNS).zip(recons.chunks(COLUMNS)) {
        let blank = vec![GAP_LEVEL; p.height * p.width];
        let pad = |row: &[Vec<u8>]| {
            let mut r = row.to_vec();
            r.resize(COLUMNS, blank.clone());
            r
        };
        tiles.extend(pad(a));
        tiles.extend(pad(b));
    }
    let rows = if p.heldout { "held-out rows" } else { "data rows" };
    put(
        "reconstructions.png",
        Grid::new(&tiles, p.height, p.width, COLUMNS, z).captioned(&format!(
            "{model}: {rows} (odd lines) over their reconstructions: the decoder's mean at a code drawn from the encoder (even lines)"
        )),
    )?;
    put(
        "samples.png",
        Grid::new(&to_tiles(&p.samples), p.height, p.width, COLUMNS, z).captioned(&format!(
            "{model}: {} codes drawn from the prior, decoded (the decoder's mean)",
            p.samples.len()
        )),
    )?;
    if let Some((side, grid)) = &p.manifold {
        put(
            "manifold.png",
            Grid::new(&to_tiles(grid), p.height, p.width, *side, z).captioned(&format!(
                "{model}: the decoder's mean over a {side}x{side} grid of the 2-D code at the prior's 5%..95% quantiles (z1 down, z2 across)"
            )),
        )?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_land_in_their_cells() {
        let tiles = vec![vec![0u8; 4], vec![255u8; 4], vec![10u8; 4]];
        let g = Grid::new(&tiles, 2, 2, 2, 1);
        assert_eq!((g.width, g.height), (7, 7));
        assert_eq!(g.pixels[g.width + 1], 0);
        assert_eq!(g.pixels[g.width + 4], 255);
        assert_eq!(g.pixels[4 * g.width + 1], 10);
        assert_eq!(g.pixels[0], GAP_LEVEL);
        let png = g.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn a_caption_sits_above_the_grid_in_wrapped_lines() {
        assert_eq!(wrap("a bb ccc dddddd", 4), vec!["a bb", "ccc", "dddd", "dd"]);
        let g = Grid::new(&[vec![7u8; 4]], 2, 2, 1, 1);
        let tall = Grid::new(&[vec![7u8; 1600]], 40, 40, 1, 1).captioned("Hi");
        assert_eq!(tall.width, 42);
        let band = tall.height - 42;
        assert_eq!(band, 18);
        // Some ink in the band, and the grid unchanged below it.
        assert!(tall.pixels[..band * tall.width].contains(&0));
        assert_eq!(tall.pixels[(band + 1) * tall.width + 1], 7);
        assert_eq!(g.captioned("x").width, 4);
    }

    #[test]
    fn levels_stretch_a_range() {
        assert_eq!(levels(&[0.0, 0.5, 1.0, 2.0], (0.0, 1.0)), vec![0, 128, 255, 255]);
        assert_eq!(levels(&[10.0, 20.0], (10.0, 20.0)), vec![0, 255]);
    }
}

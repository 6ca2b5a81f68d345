//! A small bar-chart renderer for `tern compare`: draws into an RGB buffer with
//! an embedded 5x7 bitmap font and writes a PNG (no plotting dependencies).
//!
//! Layout: a title line, a legend at the top right, horizontal grid lines every
//! `grid_step` units labelled on the left, one bar per value in the given order
//! (from the zero line), and the bar's label under every k-th bar (k chosen so
//! labels do not overlap). Values beyond the axis range are clipped and marked
//! with a dark cap.

use std::path::Path;

use crate::error::{Error, Result};

/// Image height in pixels.
pub const HEIGHT: u32 = 480;
/// Smallest image width in pixels.
pub const MIN_WIDTH: u32 = 800;
/// Horizontal pixels per bar once the chart outgrows [`MIN_WIDTH`].
pub const MIN_PITCH: u32 = 6;

const LEFT: u32 = 56;
const RIGHT: u32 = 16;
const TOP: u32 = 40;
const BOTTOM: u32 = 44;
const GLYPH_W: u32 = 5;
const GLYPH_H: u32 = 7;
/// Horizontal advance of one character (glyph plus one pixel of spacing).
const ADVANCE: u32 = GLYPH_W + 1;

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [218, 218, 218];
const TEXT: [u8; 3] = [40, 40, 40];
const CLIP_MARK: [u8; 3] = [20, 20, 20];

/// One bar.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Height in axis units (e.g. dB); non-finite values draw no bar.
    pub value: f64,
    /// Text under the bar (shown for every k-th bar).
    pub label: String,
    /// Fill colour.
    pub color: [u8; 3],
}

/// A bar chart to render.
#[derive(Clone, Debug)]
pub struct BarChart<'a> {
    /// Title at the top left (drawn upper-case).
    pub title: &'a str,
    /// Caption under the bar labels, e.g. "op index".
    pub x_caption: &'a str,
    /// Bars, left to right.
    pub bars: &'a [Bar],
    /// Legend entries (text, colour), drawn at the top right.
    pub legend: &'a [(&'a str, [u8; 3])],
    /// Spacing of the labelled horizontal grid lines (axis units).
    pub grid_step: f64,
    /// The axis never extends above this value (taller bars are clipped).
    pub y_max_cap: f64,
    /// The axis never extends below this value.
    pub y_min_cap: f64,
}

/// An RGB image, 8 bits per channel, rows top to bottom.
#[derive(Clone, Debug)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// Width of the image for a chart of `bars` bars.
pub fn width_for(bars: usize) -> u32 {
    let needed = LEFT as u64 + RIGHT as u64 + MIN_PITCH as u64 * bars as u64;
    needed.clamp(MIN_WIDTH as u64, u32::MAX as u64 / 4) as u32
}

impl Image {
    fn new(width: u32, height: u32) -> Image {
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        for px in rgb.chunks_exact_mut(3) {
            px.copy_from_slice(&WHITE);
        }
        Image { width, height, rgb }
    }

    /// The colour at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb[i..i + 3].copy_from_slice(&color);
    }

    /// Fills the rectangle `[x0, x1) x [y0, y1)`, clipped to the image.
    fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
        let (x0, x1) = (x0.max(0), x1.min(self.width as i64));
        let (y0, y1) = (y0.max(0), y1.min(self.height as i64));
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x, y, color);
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y); returns the width drawn.
    fn text(&mut self, x: i64, y: i64, text: &str, color: [u8; 3]) -> i64 {
        let mut cx = x;
        for c in text.chars() {
            let rows = glyph(c);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                        self.set(cx + col as i64, y + r as i64, color);
                    }
                }
            }
            cx += ADVANCE as i64;
        }
        cx - x
    }

    /// Writes the image as an 8-bit RGB PNG.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let png_err = |e: png::EncodingError| match e {
            png::EncodingError::IoError(e) => Error::io(path, e),
            other => Error::io(path, std::io::Error::other(other)),
        };
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&self.rgb).map_err(png_err)?;
        writer.finish().map_err(png_err)
    }
}

/// Pixel width of `text`.
fn text_width(text: &str) -> i64 {
    (text.chars().count() as i64 * ADVANCE as i64 - 1).max(0)
}

/// Renders `chart` (width from [`width_for`], height [`HEIGHT`]).
pub fn render(chart: &BarChart<'_>) -> Image {
    let width = width_for(chart.bars.len());
    let mut img = Image::new(width, HEIGHT);
    let step = if chart.grid_step > 0.0 {
        chart.grid_step
    } else {
        10.0
    };

    // Axis range: whole grid steps around 0 and the bars, within the caps.
    let finite = chart.bars.iter().map(|b| b.value).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0f64, step), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y_max = ((hi / step).ceil() * step).min(chart.y_max_cap.max(step));
    let y_min = ((lo / step).floor() * step).max(chart.y_min_cap.min(0.0));
    let (plot_top, plot_bottom) = (TOP as i64, (HEIGHT - BOTTOM) as i64);
    let (plot_left, plot_right) = (LEFT as i64, (width - RIGHT) as i64);
    let y_of = |v: f64| -> i64 {
        let t = (v.clamp(y_min, y_max) - y_min) / (y_max - y_min);
        plot_bottom - (t * (plot_bottom - plot_top) as f64).round() as i64
    };

    // Title and legend.
    img.text(8, 10, &chart.title.to_uppercase(), TEXT);
    let mut lx = plot_right;
    for (name, color) in chart.legend.iter().rev() {
        let name = name.to_uppercase();
        lx -= text_width(&name);
        img.text(lx, 24, &name, TEXT);
        lx -= 11;
        img.fill(lx, 24, lx + 7, 24 + GLYPH_H as i64, *color);
        lx -= 12;
    }

    // Grid lines with their values.
    let mut k = (y_min / step).round() as i64;
    while k as f64 * step <= y_max + 1e-9 {
        let v = k as f64 * step;
        let y = y_of(v);
        let color = if k == 0 { BLACK } else { GRID };
        img.fill(plot_left, y, plot_right, y + 1, color);
        let label = format_tick(v);
        img.text(
            plot_left - 6 - text_width(&label),
            y - GLYPH_H as i64 / 2,
            &label,
            TEXT,
        );
        k += 1;
    }
    // Y axis.
    img.fill(plot_left - 1, plot_top, plot_left, plot_bottom + 1, BLACK);

    // Bars.
    let n = chart.bars.len().max(1) as f64;
    let pitch = (plot_right - plot_left) as f64 / n;
    let bar_w = ((pitch * 0.75).floor() as i64).max(1);
    let zero = y_of(0.0);
    let widest = chart
        .bars
        .iter()
        .map(|b| text_width(&b.label))
        .max()
        .unwrap_or(0);
    let every = label_every(widest + 4, pitch);
    for (i, bar) in chart.bars.iter().enumerate() {
        let x0 = plot_left + (i as f64 * pitch + (pitch - bar_w as f64) / 2.0).round() as i64;
        let center = x0 + bar_w / 2;
        if bar.value.is_finite() {
            let y = y_of(bar.value);
            let (a, b) = if y <= zero {
                (y, zero)
            } else {
                (zero + 1, y + 1)
            };
            img.fill(x0, a, x0 + bar_w, b, bar.color);
            if bar.value > y_max {
                img.fill(x0, a, x0 + bar_w, a + 3, CLIP_MARK);
            } else if bar.value < y_min {
                img.fill(x0, b - 3, x0 + bar_w, b, CLIP_MARK);
            }
        }
        if i % every == 0 {
            img.fill(center, plot_bottom + 1, center + 1, plot_bottom + 4, BLACK);
            img.text(
                center - text_width(&bar.label) / 2,
                plot_bottom + 6,
                &bar.label,
                TEXT,
            );
        }
    }
    let caption = chart.x_caption.to_uppercase();
    img.text(
        (plot_left + plot_right - text_width(&caption)) / 2,
        plot_bottom + 8 + GLYPH_H as i64 + 6,
        &caption,
        TEXT,
    );
    img
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... bars between labels that leaves
/// `label_px` pixels per label.
fn label_every(label_px: i64, pitch: f64) -> usize {
    let mut every = 1usize;
    let mut mult = [2usize, 5, 10].into_iter().cycle();
    let mut base = 1usize;
    while (every as f64) * pitch < label_px as f64 {
        let m = mult.next().unwrap_or(10);
        every = base * m;
        if m == 10 {
            base *= 10;
        }
    }
    every
}

fn format_tick(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The 5x7 glyph of `c` (one byte per row, bit 4 leftmost); lower case is drawn
/// as upper case and unknown characters as a small box.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        ' ' => [0; 7],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        ';' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        _ => [0x00, 0x1F, 0x11, 0x11, 0x11, 0x1F, 0x00],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart_of(values: &[f64]) -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Bar {
                value,
                label: i.to_string(),
                color: [200, 80, 20],
            })
            .collect()
    }

    #[test]
    fn label_spacing_grows_in_1_2_5_steps() {
        assert_eq!(label_every(10, 12.0), 1);
        assert_eq!(label_every(10, 6.0), 2);
        assert_eq!(label_every(10, 3.0), 5);
        assert_eq!(label_every(30, 2.0), 20);
        assert_eq!(label_every(30, 0.5), 100);
    }

    #[test]
    fn bars_are_drawn_from_the_zero_line_in_their_colour() {
        let bars = chart_of(&[10.0, 35.0, 200.0, -5.0, f64::NAN]);
        let chart = BarChart {
            title: "test",
            x_caption: "op",
            bars: &bars,
            legend: &[("int8", [200, 80, 20])],
            grid_step: 10.0,
            y_max_cap: 100.0,
            y_min_cap: -100.0,
        };
        let img = render(&chart);
        assert_eq!((img.width, img.height), (width_for(5), HEIGHT));
        assert_eq!(img.rgb.len(), (img.width * img.height * 3) as usize);
        // Bar 1 (35 dB) is coloured just above the zero line (at 0 on a -10..100 axis).
        let pitch = (img.width - LEFT - RIGHT) as f64 / 5.0;
        let x = LEFT + (1.5 * pitch) as u32;
        let zero = (HEIGHT - BOTTOM) as f64 - 10.0 / 110.0 * (HEIGHT - BOTTOM - TOP) as f64;
        assert_eq!(img.pixel(x, zero as u32 - 3), [200, 80, 20]);
        // The clipped 200 dB bar reaches the top of the plot with a dark cap.
        let x = LEFT + (2.5 * pitch) as u32;
        assert_eq!(img.pixel(x, TOP + 1), CLIP_MARK);
        assert_eq!(img.pixel(x, TOP + 10), [200, 80, 20]);
    }

    #[test]
    fn png_round_trips_with_its_size() {
        let bars = chart_of(&(0..300).map(|i| (i % 60) as f64).collect::<Vec<_>>());
        let chart = BarChart {
            title: "per-tensor SQNR (dB)",
            x_caption: "op index",
            bars: &bars,
            legend: &[("int8", [200, 80, 20]), ("f32", [40, 100, 200])],
            grid_step: 10.0,
            y_max_cap: 100.0,
            y_min_cap: -100.0,
        };
        let img = render(&chart);
        assert!(img.width > MIN_WIDTH);
        let dir = std::env::temp_dir().join(format!("tern-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.png");
        img.write_png(&path).unwrap();
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (img.width, img.height));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], &img.rgb[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

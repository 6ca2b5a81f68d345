//! The phase decomposition of a transposed convolution, shared by its int8 and
//! float fast kernels: output pixels split by phase `(oy mod sh, ox mod sw)`;
//! within one phase the same kernel taps land on every output, each reading
//! the input at a fixed offset from the phase's output position, so a phase is
//! an ordinary stride-1 convolution over its sub-grid with a reduced kernel.

use super::ConvGeometry;

/// Most kernel taps per dimension within one phase; wider kernels (relative
/// to the stride) run the reference kernel instead.
pub(crate) const MAX_PHASE_TAPS: usize = 16;

/// The phase structure of one dimension: stride, dilation, padding, kernel extent.
#[derive(Clone, Copy)]
pub(crate) struct Axis {
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad: usize,
    pub out_len: usize,
}

impl Axis {
    /// Most taps that land on one output position: `ceil(kernel / period)`
    /// with `period = stride / gcd(dilation, stride)`.
    pub(crate) fn max_taps(&self) -> usize {
        let period = self.stride / gcd(self.dilation, self.stride);
        self.kernel.div_ceil(period.max(1))
    }

    /// Outputs of phase `p`: `p, p + stride, ...` below `out_len`.
    pub(crate) fn phase_len(&self, p: usize) -> usize {
        self.out_len.saturating_sub(p).div_ceil(self.stride)
    }

    /// The taps of phase `p` and, for each, the input offset `c` such that
    /// phase output `j` reads input `j + c`. Returns how many (at most
    /// [`MAX_PHASE_TAPS`]).
    pub(crate) fn phase_taps(
        &self,
        p: usize,
        taps: &mut [usize; MAX_PHASE_TAPS],
        offsets: &mut [isize; MAX_PHASE_TAPS],
    ) -> usize {
        let mut count = 0;
        for k in 0..self.kernel {
            let t = (p + self.pad) as isize - (k * self.dilation) as isize;
            if t.rem_euclid(self.stride as isize) == 0 && count < MAX_PHASE_TAPS {
                taps[count] = k;
                offsets[count] = t.div_euclid(self.stride as isize);
                count += 1;
            }
        }
        count
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The two axes (rows, columns) of a transposed convolution.
pub(crate) fn axes(g: &ConvGeometry) -> [Axis; 2] {
    let w = &g.window;
    let outs = [g.out_shape.h, g.out_shape.w];
    core::array::from_fn(|i| Axis {
        kernel: w.kernel[i],
        stride: w.stride[i].max(1),
        dilation: w.dilation[i],
        pad: w.pad_begin[i],
        out_len: outs[i],
    })
}

/// One phase `(py, px)`: its output sub-grid and the taps that land on it.
#[derive(Clone, Copy)]
pub(crate) struct PhaseTaps {
    pub py: usize,
    pub px: usize,
    /// Output rows and columns of the phase.
    pub rows: usize,
    pub cols: usize,
    /// Taps per dimension and their input offsets (`iy = j + cy[a]`).
    pub ty: [usize; MAX_PHASE_TAPS],
    pub tx: [usize; MAX_PHASE_TAPS],
    pub cy: [isize; MAX_PHASE_TAPS],
    pub cx: [isize; MAX_PHASE_TAPS],
    pub ny: usize,
    pub nx: usize,
}

impl PhaseTaps {
    /// Phase `(py, px)` of the axes `[rows, columns]`.
    pub(crate) fn new([ay, ax]: [Axis; 2], [py, px]: [usize; 2]) -> PhaseTaps {
        let mut t = PhaseTaps {
            py,
            px,
            rows: ay.phase_len(py),
            cols: ax.phase_len(px),
            ty: [0; MAX_PHASE_TAPS],
            tx: [0; MAX_PHASE_TAPS],
            cy: [0; MAX_PHASE_TAPS],
            cx: [0; MAX_PHASE_TAPS],
            ny: 0,
            nx: 0,
        };
        t.ny = ay.phase_taps(py, &mut t.ty, &mut t.cy);
        t.nx = ax.phase_taps(px, &mut t.tx, &mut t.cx);
        t
    }
}

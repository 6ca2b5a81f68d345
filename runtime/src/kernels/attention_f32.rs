//! Fused float scaled-dot-product attention (ONNX Attention, opset 23), one query row
//! at a time: the row's scores live in a `kv_len` scratch row, never the full
//! `[q_len][kv_len]` matrix.
//!
//! Each step performs the operations of the unfused graph
//! `MatMul(Q, K^T) -> Mul(scale) -> Add(mask) -> Softmax -> MatMul(P, V)` in the same
//! order: scores summed over the head dimension in increasing order from 0.0, scaled,
//! then masked; a max-subtracted softmax normalized by `1 / sum`; the output summed over
//! keys in increasing order. So the result agrees with the unfused kernels to a few
//! ulps (usually bit for bit). Scores are computed [`KEYS`] keys at a time (independent
//! sums sharing the loads of the query row), or, when K is stored transposed, as
//! contiguous row updates over the keys.

use super::{Operand, broadcast_strides};

/// Keys whose scores are summed together (independent accumulators).
const KEYS: usize = 8;

/// Dimensions of one attention call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionShape {
    /// Batch size `B`.
    pub batch: usize,
    /// Query heads `Hq`.
    pub q_heads: usize,
    /// Key / value heads `Hkv` (divides `Hq`; fewer than `Hq` for grouped-query attention).
    pub kv_heads: usize,
    /// Query positions `Lq`.
    pub q_len: usize,
    /// Key / value positions `Lkv`.
    pub kv_len: usize,
    /// Query / key head size `D`.
    pub head_dim: usize,
    /// Value head size `Dv`.
    pub v_head_dim: usize,
}

/// Attributes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionConfig {
    /// Factor applied to `Q K^T` (ONNX default `1 / sqrt(D)`, resolved by the converter).
    pub scale: f32,
    /// Mask key `j` for query `i` when `j > i` (ONNX `is_causal`, upper-left aligned).
    pub causal: bool,
    /// K is stored `[B][Hkv][D][Lkv]` instead of `[B][Hkv][Lkv][D]`.
    pub k_transposed: bool,
}

/// The tensors one attention call reads (layouts in [`attention_f32`]).
#[derive(Clone, Copy, Debug)]
pub struct AttentionInputs<'a> {
    /// Queries `[B][Hq][Lq][D]`.
    pub q: &'a [f32],
    /// Keys `[B][Hkv][Lkv][D]` (or `[B][Hkv][D][Lkv]`).
    pub k: &'a [f32],
    /// Values `[B][Hkv][Lkv][Dv]`.
    pub v: &'a [f32],
    /// Additive mask, right-aligned against `[B][Hq][Lq][Lkv]` and broadcast.
    pub mask: Option<Operand<'a, f32>>,
}

/// Scratch `f32`s that [`attention_f32`] needs: one row of scores.
pub fn attention_f32_scratch_len(shape: &AttentionShape) -> usize {
    shape.kv_len
}

/// `output = softmax(scale * Q K^T + mask) V` per batch and query head, softmax over keys.
///
/// Layouts: `q` is `[B][Hq][Lq][D]`, `k` is `[B][Hkv][Lkv][D]` (or `[B][Hkv][D][Lkv]`
/// with `cfg.k_transposed`), `v` is `[B][Hkv][Lkv][Dv]`, `output` is `[B][Hq][Lq][Dv]`.
/// Query head `h` reads key / value head `h / (Hq / Hkv)`. `mask` is an additive float
/// mask (`inputs.mask`, rank <= 4), right-aligned against `[B][Hq][Lq][Lkv]` and
/// broadcast on its size-1 axes. With `cfg.causal`, key `j > i` is excluded for query
/// `i` (a score of -inf, as ONNX's causal bias): those keys' K, V and mask entries are
/// never read.
///
/// A row whose scores are all -inf (fully masked) gives NaN, as the unfused Softmax
/// (`exp(-inf - -inf)`) does; `kv_len == 0` gives zeros, as the unfused MatMul over an
/// empty axis does. Preconditions (debug-asserted): `Hkv` divides `Hq`, slice lengths
/// match the shapes, the mask broadcasts, `scratch.len() >=`
/// [`attention_f32_scratch_len`].
pub fn attention_f32(
    cfg: &AttentionConfig,
    shape: &AttentionShape,
    inputs: &AttentionInputs,
    output: &mut [f32],
    scratch: &mut [f32],
) {
    let AttentionInputs { q, k, v, mask } = *inputs;
    let mask = mask.map(|m| (m.data, m.shape));
    let AttentionShape {
        batch,
        q_heads,
        kv_heads,
        q_len,
        kv_len,
        head_dim: d,
        v_head_dim: dv,
    } = *shape;
    debug_assert!((kv_heads > 0 && q_heads.is_multiple_of(kv_heads)) || q_heads * batch == 0);
    debug_assert_eq!(q.len(), batch * q_heads * q_len * d);
    debug_assert_eq!(k.len(), batch * kv_heads * kv_len * d);
    debug_assert_eq!(v.len(), batch * kv_heads * kv_len * dv);
    debug_assert_eq!(output.len(), batch * q_heads * q_len * dv);
    debug_assert!(scratch.len() >= attention_f32_scratch_len(shape));
    let full = [batch, q_heads, q_len, kv_len];
    debug_assert!(mask.is_none_or(|(m, s)| {
        s.len() <= 4
            && m.len() == s.iter().product::<usize>()
            && s.iter()
                .zip(&full[4 - s.len()..])
                .all(|(&a, &o)| a == 1 || a == o)
    }));
    if output.is_empty() {
        return;
    }
    let group = q_heads / kv_heads;
    let mask = mask.map(|(m, s)| (m, broadcast_strides(s, &full)));
    let scores = &mut scratch[..kv_len];
    for b in 0..batch {
        for h in 0..q_heads {
            let kv_head = b * kv_heads + h / group;
            let k_head = &k[kv_head * kv_len * d..][..kv_len * d];
            let v_head = &v[kv_head * kv_len * dv..][..kv_len * dv];
            let first_row = (b * q_heads + h) * q_len;
            for i in 0..q_len {
                let q_row = &q[(first_row + i) * d..][..d];
                let out_row = &mut output[(first_row + i) * dv..][..dv];
                let keys = if cfg.causal {
                    kv_len.min(i + 1)
                } else {
                    kv_len
                };
                let s = &mut scores[..keys];
                if cfg.k_transposed {
                    scores_k_transposed(q_row, k_head, kv_len, s);
                } else {
                    scores_k_rows(q_row, k_head, s);
                }
                match mask {
                    Some((m, ms)) => {
                        let at = b * ms[0] + h * ms[1] + i * ms[2];
                        if ms[3] == 0 {
                            let mv = m[at];
                            for x in s.iter_mut() {
                                *x = *x * cfg.scale + mv;
                            }
                        } else {
                            for (x, &mv) in s.iter_mut().zip(&m[at..at + keys]) {
                                *x = *x * cfg.scale + mv;
                            }
                        }
                    }
                    None => {
                        for x in s.iter_mut() {
                            *x *= cfg.scale;
                        }
                    }
                }
                softmax_row(s);
                out_row.fill(0.0);
                for (&p, v_row) in s.iter().zip(v_head.chunks_exact(dv)) {
                    for (o, &x) in out_row.iter_mut().zip(v_row) {
                        *o += p * x;
                    }
                }
            }
        }
    }
}

/// `s[j] = sum_d q[d] * k[j][d]` (K rows `[Lkv][D]`), [`KEYS`] keys at a time.
#[inline(always)]
fn scores_k_rows(q: &[f32], k: &[f32], s: &mut [f32]) {
    let d = q.len();
    let (blocks, tail) = s.as_chunks_mut::<KEYS>();
    let tail_start = blocks.len() * KEYS;
    for (bi, block) in blocks.iter_mut().enumerate() {
        let rows: [&[f32]; KEYS] = core::array::from_fn(|t| &k[(bi * KEYS + t) * d..][..d]);
        let mut acc = [0.0f32; KEYS];
        for (c, &qv) in q.iter().enumerate() {
            for (a, row) in acc.iter_mut().zip(&rows) {
                *a += qv * row[c];
            }
        }
        *block = acc;
    }
    for (t, out) in tail.iter_mut().enumerate() {
        let row = &k[(tail_start + t) * d..][..d];
        let mut acc = 0.0f32;
        for (&qv, &kv) in q.iter().zip(row) {
            acc += qv * kv;
        }
        *out = acc;
    }
}

/// `s[j] = sum_d q[d] * kt[d][j]` (K transposed `[D][Lkv]`), as row updates over `j`.
#[inline(always)]
fn scores_k_transposed(q: &[f32], kt: &[f32], kv_len: usize, s: &mut [f32]) {
    s.fill(0.0);
    let keys = s.len();
    for (c, &qv) in q.iter().enumerate() {
        for (x, &kv) in s.iter_mut().zip(&kt[c * kv_len..][..keys]) {
            *x += qv * kv;
        }
    }
}

/// In-place max-subtracted softmax of one row, the same operations as `softmax_f32`.
#[inline(always)]
fn softmax_row(s: &mut [f32]) {
    let max = s
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let mut sum = 0.0f32;
    for x in s.iter_mut() {
        let e = libm::expf(*x - max);
        *x = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for x in s.iter_mut() {
        *x *= inv;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    /// The unfused graph with straightforward loops: `S = Q K^T` (MatMul), `S *= scale`
    /// (Mul), `S += mask` (Add, broadcast; causal as ONNX's -inf bias), softmax over the
    /// last axis, `O = P V` (MatMul). Also returns, per output, `sum_j |p_j v_j|` for
    /// the error bound.
    fn unfused(
        cfg: &AttentionConfig,
        sh: &AttentionShape,
        q: &[f32],
        k: &[f32], // [B][Hkv][Lkv][D], never transposed
        v: &[f32],
        mask: Option<(&[f32], &[usize])>,
    ) -> (Vec<f32>, Vec<f32>) {
        let (lq, lk, d, dv) = (sh.q_len, sh.kv_len, sh.head_dim, sh.v_head_dim);
        let mut out = vec![0.0f32; sh.batch * sh.q_heads * lq * dv];
        let mut mag = vec![0.0f32; out.len()];
        let mask_at = |b: usize, h: usize, i: usize, j: usize| -> f32 {
            let Some((m, s)) = mask else { return 0.0 };
            let coord = [b, h, i, j];
            let off = 4 - s.len();
            let mut idx = 0;
            for (a, &len) in s.iter().enumerate() {
                idx = idx * len + if len == 1 { 0 } else { coord[a + off] };
            }
            m[idx]
        };
        for b in 0..sh.batch {
            for h in 0..sh.q_heads {
                let kvh = b * sh.kv_heads + h / (sh.q_heads / sh.kv_heads);
                for i in 0..lq {
                    let qi = ((b * sh.q_heads + h) * lq + i) * d;
                    let mut p = vec![0.0f32; lk];
                    for (j, pj) in p.iter_mut().enumerate() {
                        let mut s = 0.0f32;
                        for c in 0..d {
                            s += q[qi + c] * k[(kvh * lk + j) * d + c];
                        }
                        s *= cfg.scale;
                        let causal = if cfg.causal && j > i {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        };
                        *pj = s + (causal + mask_at(b, h, i, j));
                    }
                    let m = p.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let mut sum = 0.0f32;
                    for x in p.iter_mut() {
                        *x = libm::expf(*x - m);
                        sum += *x;
                    }
                    for x in p.iter_mut() {
                        *x *= 1.0 / sum;
                    }
                    let oi = ((b * sh.q_heads + h) * lq + i) * dv;
                    for e in 0..dv {
                        let mut acc = 0.0f32;
                        for (j, &pj) in p.iter().enumerate() {
                            let t = pj * v[(kvh * lk + j) * dv + e];
                            acc += t;
                            mag[oi + e] += t.abs();
                        }
                        out[oi + e] = acc;
                    }
                }
            }
        }
        (out, mag)
    }

    /// `[..][Lkv][D]` -> `[..][D][Lkv]`.
    fn transpose_k(k: &[f32], lk: usize, d: usize) -> Vec<f32> {
        let mut kt = vec![0.0f32; k.len()];
        if lk * d == 0 {
            return kt;
        }
        for (src, dst) in k.chunks_exact(lk * d).zip(kt.chunks_exact_mut(lk * d)) {
            for j in 0..lk {
                for c in 0..d {
                    dst[c * lk + j] = src[j * d + c];
                }
            }
        }
        kt
    }

    /// Runs the fused kernel (both K layouts) against [`unfused`].
    fn check(
        cfg: AttentionConfig,
        sh: AttentionShape,
        mask: Option<(&[f32], &[usize])>,
        rng: &mut XorShift,
    ) {
        let random =
            |n: usize, rng: &mut XorShift| -> Vec<f32> { (0..n).map(|_| rng.f32()).collect() };
        let q = random(sh.batch * sh.q_heads * sh.q_len * sh.head_dim, rng);
        let k = random(sh.batch * sh.kv_heads * sh.kv_len * sh.head_dim, rng);
        let v = random(sh.batch * sh.kv_heads * sh.kv_len * sh.v_head_dim, rng);
        let (want, mag) = unfused(&cfg, &sh, &q, &k, &v, mask);
        let kt = transpose_k(&k, sh.kv_len, sh.head_dim);
        for transposed in [false, true] {
            let cfg = AttentionConfig {
                k_transposed: transposed,
                ..cfg
            };
            let mut out = vec![f32::MAX; want.len()];
            // Scratch longer than needed, poisoned: the kernel must not depend on either.
            let mut scratch = vec![f32::NAN; attention_f32_scratch_len(&sh) + 3];
            let k_in = if transposed { &kt } else { &k };
            attention_f32(
                &cfg,
                &sh,
                &AttentionInputs {
                    q: &q,
                    k: k_in,
                    v: &v,
                    mask: mask.map(|(data, shape)| Operand::new(data, shape)),
                },
                &mut out,
                &mut scratch,
            );
            for ((&g, &w), &m) in out.iter().zip(&want).zip(&mag) {
                let ok = if w.is_nan() {
                    g.is_nan()
                } else {
                    (g - w).abs() <= 1e-6 * m + 1e-30
                };
                assert!(ok, "{cfg:?} {sh:?}: {g} vs {w}");
            }
        }
    }

    fn shape(
        b: usize,
        hq: usize,
        hkv: usize,
        lq: usize,
        lk: usize,
        d: usize,
        dv: usize,
    ) -> AttentionShape {
        AttentionShape {
            batch: b,
            q_heads: hq,
            kv_heads: hkv,
            q_len: lq,
            kv_len: lk,
            head_dim: d,
            v_head_dim: dv,
        }
    }

    const PLAIN: AttentionConfig = AttentionConfig {
        scale: 0.5,
        causal: false,
        k_transposed: false,
    };

    #[test]
    fn hand_computed() {
        // One query [1, 0] against keys [ln 3, 0] and [0, 0] with scale 1: weights
        // [3/4, 1/4] over values [4, 8] and [0, -4].
        let sh = shape(1, 1, 1, 1, 2, 2, 2);
        let cfg = AttentionConfig {
            scale: 1.0,
            ..PLAIN
        };
        let k = [libm::logf(3.0), 0.0, 0.0, 0.0];
        let mut out = [0.0f32; 2];
        let mut scratch = [0.0f32; 2];
        attention_f32(
            &cfg,
            &sh,
            &AttentionInputs {
                q: &[1.0, 0.0],
                k: &k,
                v: &[4.0, 8.0, 0.0, -4.0],
                mask: None,
            },
            &mut out,
            &mut scratch,
        );
        assert!(
            (out[0] - 3.0).abs() < 1e-6 && (out[1] - 5.0).abs() < 1e-6,
            "{out:?}"
        );
        // A mask of -inf on the first key leaves only the second.
        let mask = [f32::NEG_INFINITY, 0.0];
        attention_f32(
            &cfg,
            &sh,
            &AttentionInputs {
                q: &[1.0, 0.0],
                k: &k,
                v: &[4.0, 8.0, 0.0, -4.0],
                mask: Some(Operand::new(&mask, &[2])),
            },
            &mut out,
            &mut scratch,
        );
        assert_eq!(out, [0.0, -4.0]);
        assert_eq!(attention_f32_scratch_len(&sh), 2);
    }

    #[test]
    fn random_shapes_match_unfused() {
        let mut rng = XorShift(0x6174_7465_6e64_0001);
        for iter in 0..120usize {
            let hkv = 1 + rng.below(2);
            let sh = shape(
                1 + rng.below(2),
                hkv * (1 + rng.below(3)),
                hkv,
                1 + rng.below(7),
                1 + rng.below(20),
                rng.below(12),
                1 + rng.below(9),
            );
            let cfg = AttentionConfig {
                scale: 0.3 + rng.f32().abs(),
                causal: iter % 2 == 1,
                k_transposed: false,
            };
            // Masks of every rank, broadcast on random axes, with some -inf entries.
            let full = [sh.batch, sh.q_heads, sh.q_len, sh.kv_len];
            let rank = rng.below(5);
            let mshape: Vec<usize> = full[4 - rank..]
                .iter()
                .map(|&n| if rng.below(3) == 0 { 1 } else { n })
                .collect();
            let mvals: Vec<f32> = (0..mshape.iter().product())
                .map(|_| {
                    if rng.below(6) == 0 {
                        f32::NEG_INFINITY
                    } else {
                        rng.f32() * 2.0
                    }
                })
                .collect();
            let mask = (!iter.is_multiple_of(3)).then_some((&mvals[..], &mshape[..]));
            check(cfg, sh, mask, &mut rng);
        }
    }

    #[test]
    fn grouped_query_causal_and_lengths() {
        let mut rng = XorShift(0x6174_7465_6e64_0002);
        let causal = AttentionConfig {
            causal: true,
            ..PLAIN
        };
        // GQA 8 query heads on 2 kv heads; more queries than keys and fewer (upper-left
        // aligned causal mask); long rows with full KEYS blocks and tails.
        check(causal, shape(2, 8, 2, 5, 5, 16, 8), None, &mut rng);
        check(causal, shape(1, 4, 1, 9, 4, 8, 3), None, &mut rng);
        check(causal, shape(1, 2, 2, 3, 37, 64, 64), None, &mut rng);
        check(PLAIN, shape(1, 3, 1, 4, 67, 33, 17), None, &mut rng);
        let m: Vec<f32> = (0..9 * 4).map(|i| (i % 5) as f32 - 2.0).collect();
        check(
            causal,
            shape(1, 4, 1, 9, 4, 8, 3),
            Some((&m, &[9, 4])),
            &mut rng,
        );
    }

    #[test]
    fn masked_rows_and_empty_keys() {
        let mut rng = XorShift(0x6174_7465_6e64_0003);
        // Query row 1 fully masked: NaN, like the unfused Softmax; the others unaffected.
        let ninf = f32::NEG_INFINITY;
        let m = [0.0, 1.0, 0.0, ninf, ninf, ninf, -1.0, 0.0, 2.0];
        let sh = shape(1, 2, 1, 3, 3, 4, 2);
        check(PLAIN, sh, Some((&m, &[3, 3])), &mut rng);
        let (q, k, v) = ([0.5f32; 24], [0.25f32; 12], [1.0f32; 6]);
        let mut out = [0.0f32; 12];
        let mut scratch = [0.0f32; 3];
        attention_f32(
            &PLAIN,
            &sh,
            &AttentionInputs {
                q: &q,
                k: &k,
                v: &v,
                mask: Some(Operand::new(&m, &[3, 3])),
            },
            &mut out,
            &mut scratch,
        );
        for (r, row) in out.chunks_exact(2).enumerate() {
            if r % 3 == 1 {
                assert!(row.iter().all(|x| x.is_nan()));
            } else {
                assert!(row.iter().all(|&x| (x - 1.0).abs() < 1e-6), "{row:?}");
            }
        }
        // No keys: zeros (an empty sum), for both K layouts; empty outputs.
        let sh = shape(1, 2, 2, 3, 0, 4, 2);
        let mut out = [f32::NAN; 12];
        for k_transposed in [false, true] {
            let cfg = AttentionConfig {
                k_transposed,
                ..PLAIN
            };
            attention_f32(
                &cfg,
                &sh,
                &AttentionInputs {
                    q: &[1.0; 24],
                    k: &[],
                    v: &[],
                    mask: None,
                },
                &mut out,
                &mut [],
            );
            assert_eq!(out, [0.0; 12]);
        }
        attention_f32(
            &PLAIN,
            &shape(0, 2, 1, 3, 3, 4, 2),
            &AttentionInputs {
                q: &[],
                k: &[],
                v: &[],
                mask: None,
            },
            &mut [],
            &mut [0.0; 3],
        );
        check(PLAIN, shape(2, 2, 1, 0, 3, 4, 2), None, &mut rng);
    }
}

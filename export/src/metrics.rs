//! Error metrics between a reference tensor and a candidate (SQNR, cosine
//! similarity): plain arithmetic on accumulated sums, shared by `tern compare`
//! and the mixed-precision search in `convert`. It depends on nothing else in
//! the crate, so `convert` need not import `compare`.

/// SQNR reported for a tensor whose error is exactly zero (and the lower bound).
pub const SQNR_CAP_DB: f64 = 200.0;

/// 10 log10(signal / noise), 200 dB when the noise is zero, clamped to ±200 dB
/// (-200 dB for non-finite noise).
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        return SQNR_CAP_DB;
    }
    if !noise.is_finite() {
        return -SQNR_CAP_DB;
    }
    let db = 10.0 * (signal / noise).log10();
    if db.is_nan() {
        -SQNR_CAP_DB
    } else {
        db.clamp(-SQNR_CAP_DB, SQNR_CAP_DB)
    }
}

/// Cosine similarity from Σxy, Σx² and Σy² (1 when both are all zero, 0 when one is).
pub fn cosine(dot: f64, xx: f64, yy: f64) -> f64 {
    if xx == 0.0 && yy == 0.0 {
        return 1.0;
    }
    if xx == 0.0 || yy == 0.0 {
        return 0.0;
    }
    (dot / (xx.sqrt() * yy.sqrt())).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqnr_and_cosine_values() {
        // Noise 1% of the signal energy: 20 dB.
        assert!((sqnr_db(100.0, 1.0) - 20.0).abs() < 1e-12);
        assert_eq!(sqnr_db(0.0, 1.0), -SQNR_CAP_DB);
        assert_eq!(sqnr_db(1.0, f64::NAN), -SQNR_CAP_DB);
        assert_eq!(sqnr_db(1e30, 1e-30), SQNR_CAP_DB);
        assert_eq!(cosine(0.0, 0.0, 0.0), 1.0);
        assert_eq!(cosine(0.0, 1.0, 0.0), 0.0);
        assert!((cosine(-2.0, 2.0, 2.0) + 1.0).abs() < 1e-12);
    }
}

//! Top-1 scoring of classifier outputs: the predicted class of each row and how
//! many predictions match their labels. Shared by training, conversion and
//! `tern eval`; plain slices only, so it builds with or without the `host` feature.

/// How many predicted classes (one per row, e.g. from [`argmax_rows`]) equal
/// the row's label.
pub fn correct_predictions(predictions: &[usize], labels: &[u8]) -> usize {
    predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count()
}

/// Index of the largest value in each row of `width` values.
pub fn argmax_rows(values: &[f32], width: usize) -> Vec<usize> {
    values
        .chunks(width)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

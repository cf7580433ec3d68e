//! K-fold splits of a training set: seeded, class-stratified when labels
//! exist (each class dealt round-robin over the folds after a shuffle).

use crate::error::fail;
use crate::Result;
use dae_core::rng::{Purpose, Rng};

/// The row indices of each of `k` folds over `n` rows, every row in exactly
/// one fold, fold sizes differing by at most one (per class when stratified).
pub fn k_folds(n: usize, k: usize, labels: Option<&[u32]>, seed: u64) -> Result<Vec<Vec<usize>>> {
    if k < 2 {
        fail!(
            Settings,
            "--folds {k}: cross-validation needs at least 2 folds"
        );
    }
    if k > n {
        fail!(
            Settings,
            "--folds {k}: more folds than the {n} training samples"
        );
    }
    let mut rng = Rng::new(seed, Purpose::Folds, k as u64);
    let mut folds = vec![Vec::new(); k];
    match labels {
        Some(labels) => {
            if labels.len() != n {
                fail!(Settings, "{} labels for {n} samples", labels.len());
            }
            // A map in label order, not a Vec indexed by label: a label
            // value (any u32 from a file) must never size an allocation.
            let mut by_class = std::collections::BTreeMap::<u32, Vec<usize>>::new();
            for (i, &l) in labels.iter().enumerate() {
                by_class.entry(l).or_default().push(i);
            }
            // Continue the deal where the previous class stopped, so fold
            // sizes stay within one of each other overall too.
            let mut next = 0;
            for members in by_class.values_mut() {
                rng.shuffle(members);
                for &i in members.iter() {
                    folds[next % k].push(i);
                    next += 1;
                }
            }
        }
        None => {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            for (j, i) in all.into_iter().enumerate() {
                folds[j % k].push(i);
            }
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_and_stratify() {
        let labels: Vec<u32> = (0..1000).map(|i| (i * 7 % 10) as u32).collect();
        let folds = k_folds(1000, 5, Some(&labels), 3).unwrap();
        let mut seen = vec![0; 1000];
        for f in &folds {
            assert_eq!(f.len(), 200);
            for &i in f {
                seen[i] += 1;
            }
            for c in 0..10 {
                assert_eq!(f.iter().filter(|&&i| labels[i] == c).count(), 20);
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        assert_eq!(folds, k_folds(1000, 5, Some(&labels), 3).unwrap());
        assert_ne!(folds, k_folds(1000, 5, Some(&labels), 4).unwrap());
        let plain = k_folds(11, 3, None, 1).unwrap();
        let sizes: Vec<usize> = plain.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 3]);
    }

    /// Issue 10: a label of 4,294,967,295 once sized a 100 GB table.
    #[test]
    fn huge_label_values_are_only_keys() {
        let labels = [u32::MAX, 0, u32::MAX, 0, 7, 7];
        let folds = k_folds(6, 2, Some(&labels), 1).unwrap();
        assert_eq!(folds.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3]);
        for f in &folds {
            assert_eq!(f.iter().filter(|&&i| labels[i] == u32::MAX).count(), 1);
        }
    }

    #[test]
    fn bad_fold_counts_are_refused() {
        assert!(k_folds(10, 1, None, 0)
            .unwrap_err()
            .to_string()
            .contains("at least 2"));
        assert!(k_folds(3, 4, None, 0)
            .unwrap_err()
            .to_string()
            .contains("more folds"));
    }
}

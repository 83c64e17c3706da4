//! Grouping questions into topics: average-linkage agglomerative clustering (UPGMA) over
//! cosine similarities, cut where the average similarity between two groups falls below a
//! threshold. Short questions share few words, so two of one topic may share only its key
//! term while a pair from two topics shares a common one; average linkage joins a question
//! to a group by what it shares with all of the group's members, which single words in
//! common cannot fake. Built with the nearest-neighbour chain (O(n²) time and memory).

/// The similarity of every pair of `n` points, as a dense symmetric matrix.
pub struct Similarities {
    n: usize,
    values: Vec<f32>,
}

impl Similarities {
    /// Fills the matrix with `similarity(i, j)` for `i < j`.
    pub fn new(n: usize, mut similarity: impl FnMut(usize, usize) -> f32) -> Self {
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let s = similarity(i, j);
                values[i * n + j] = s;
                values[j * n + i] = s;
            }
        }
        Self { n, values }
    }

    fn get(&self, i: usize, j: usize) -> f32 {
        self.values[i * self.n + j]
    }

    fn set(&mut self, i: usize, j: usize, s: f32) {
        self.values[i * self.n + j] = s;
        self.values[j * self.n + i] = s;
    }
}

/// Cosine similarity of two unit-length sparse vectors sorted by term id.
pub fn sparse_cosine(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// Cosine similarity of two dense vectors.
pub fn dense_cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator > 0.0 {
        dot / denominator
    } else {
        0.0
    }
}

/// Groups points whose average pairwise similarity (weighted by `weights`, the number of
/// times each distinct question was asked) is at least `threshold`. Each group lists its
/// members in index order; groups come largest (by weight) first, ties by first member.
pub fn average_linkage(mut similarities: Similarities, weights: &[u32], threshold: f32) -> Vec<Vec<usize>> {
    let n = similarities.n;
    assert_eq!(weights.len(), n, "one weight per point");
    // Cluster sizes (summed weights); a merged cluster lives on in its lower index.
    let mut size: Vec<f64> = weights.iter().map(|&w| f64::from(w.max(1))).collect();
    let mut active = vec![true; n];
    let mut parent: Vec<usize> = (0..n).collect();
    let mut chain: Vec<usize> = Vec::new();
    let mut remaining = n;
    while remaining > 1 {
        if chain.is_empty() {
            chain.push(active.iter().position(|&a| a).expect("an active cluster"));
        }
        let top = *chain.last().expect("a non-empty chain");
        // The most similar other active cluster (ties to the lowest index, so the chain
        // cannot cycle).
        let mut best: Option<(usize, f32)> = None;
        for other in (0..n).filter(|&o| o != top && active[o]) {
            let s = similarities.get(top, other);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((other, s));
            }
        }
        let (next, s) = best.expect("two active clusters");
        let previous = chain.len().checked_sub(2).map(|i| chain[i]);
        if let Some(other) = previous.filter(|&p| p == next || similarities.get(top, p) >= s) {
            // `top` and the cluster before it are each other's nearest: merge them.
            chain.truncate(chain.len() - 2);
            let sim = similarities.get(top, other);
            let (keep, gone) = (top.min(other), top.max(other));
            if sim >= threshold {
                parent[gone] = keep;
            }
            // Lance–Williams update for average linkage.
            let (a, b) = (size[keep], size[gone]);
            for o in (0..n).filter(|&o| active[o] && o != keep && o != gone) {
                let merged =
                    (a * f64::from(similarities.get(keep, o)) + b * f64::from(similarities.get(gone, o))) / (a + b);
                similarities.set(keep, o, merged as f32);
            }
            size[keep] = a + b;
            active[gone] = false;
            // A merge below the threshold is still made, for the averages, but joins
            // nothing: average linkage is monotone, so every later merge of the union is
            // below the threshold too, and the groups are those of the merges above it.
            remaining -= 1;
        } else {
            chain.push(next);
        }
    }
    // Flatten: a point's group is the root of its chain of kept merges.
    let root = |mut i: usize| {
        while parent[i] != i {
            i = parent[i];
        }
        i
    };
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        groups.entry(root(i)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    let weight = |g: &Vec<usize>| g.iter().map(|&i| u64::from(weights[i])).sum::<u64>();
    groups.sort_by(|a, b| weight(b).cmp(&weight(a)).then(a[0].cmp(&b[0])));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(points: &[Vec<f32>], threshold: f32) -> Vec<Vec<usize>> {
        let similarities = Similarities::new(points.len(), |i, j| dense_cosine(&points[i], &points[j]));
        average_linkage(similarities, &vec![1; points.len()], threshold)
    }

    #[test]
    fn close_points_group_and_far_ones_stay_apart() {
        let points = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.9, 0.1, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.95, 0.05, 0.0],
            vec![0.0, 0.9, 0.1],
            vec![0.0, 0.0, 1.0],
        ];
        assert_eq!(groups(&points, 0.8), vec![vec![0, 1, 3], vec![2, 4], vec![5]]);
        // Nothing is similar enough: every point alone.
        assert_eq!(groups(&points, 1.01).len(), 6);
        // Everything at a threshold nothing falls below.
        assert_eq!(groups(&points, -1.0), vec![vec![0, 1, 2, 3, 4, 5]]);
    }

    #[test]
    fn a_point_joins_the_group_it_resembles_on_average_not_its_one_look_alike() {
        // 3 resembles 2 a little more than any member of {0, 1}, but {2} alone; the pair
        // {0, 1} with 3 averages below the threshold, so 3 stays out of it.
        let s = [
            [0.0, 0.9, 0.1, 0.5],
            [0.9, 0.0, 0.1, 0.0],
            [0.1, 0.1, 0.0, 0.6],
            [0.5, 0.0, 0.6, 0.0],
        ];
        let similarities = Similarities::new(4, |i, j| s[i][j]);
        assert_eq!(
            average_linkage(similarities, &[1; 4], 0.4),
            vec![vec![0, 1], vec![2, 3]]
        );
    }

    #[test]
    fn weights_order_the_groups() {
        let points = [vec![1.0, 0.0], vec![0.0, 1.0], vec![0.1, 1.0]];
        let similarities = Similarities::new(3, |i, j| dense_cosine(&points[i], &points[j]));
        assert_eq!(
            average_linkage(similarities, &[9, 1, 1], 0.9),
            vec![vec![0], vec![1, 2]]
        );
    }

    #[test]
    fn sparse_cosine_counts_shared_terms_only() {
        let a = [(1, 0.6), (3, 0.8)];
        let b = [(2, 0.6), (3, 0.8)];
        assert!((sparse_cosine(&a, &b) - 0.64).abs() < 1e-6);
        assert_eq!(sparse_cosine(&a, &[(7, 1.0)]), 0.0);
    }
}

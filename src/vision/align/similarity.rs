//! 2-D similarity transforms (rotation, uniform scale, translation) and their least-squares fit.

/// `p -> [a -b; b a] p + t`: scale `sqrt(a² + b²)`, rotation `atan2(b, a)`, translation `t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// The similarity that maps `src` onto `dst` with the least summed squared error (Umeyama's closed form,
    /// which in 2-D without reflections reduces to a 4-parameter linear least squares). `None` when the
    /// problem has no unique answer: fewer than 2 points, lengths differ, all `src` points coincide, or a
    /// coordinate is not finite.
    pub fn fit(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Self> {
        let n = src.len();
        if n < 2 || dst.len() != n || src.iter().chain(dst).flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let mean = |pts: &[[f64; 2]]| {
            let s = pts
                .iter()
                .fold([0.0, 0.0], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
            [s[0] / n as f64, s[1] / n as f64]
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut var, mut dot, mut cross) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
            let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
            var += sx * sx + sy * sy;
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
        }
        // Relative to the spread of the points, so tiny but valid faces still fit.
        if var <= f64::EPSILON * (ms[0].abs() + ms[1].abs() + 1.0).powi(2) {
            return None;
        }
        let (a, b) = (dot / var, cross / var);
        Some(Self {
            a,
            b,
            tx: md[0] - (a * ms[0] - b * ms[1]),
            ty: md[1] - (b * ms[0] + a * ms[1]),
        })
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// The inverse map; `None` for a zero scale.
    pub fn inverse(&self) -> Option<Self> {
        let d = self.a * self.a + self.b * self.b;
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        Some(Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(p: [f64; 2], q: [f64; 2]) -> bool {
        (p[0] - q[0]).abs() < 1e-9 && (p[1] - q[1]).abs() < 1e-9
    }

    #[test]
    fn recovers_an_exact_similarity() {
        let truth = Similarity {
            a: 1.7 * 0.3f64.cos(),
            b: 1.7 * 0.3f64.sin(),
            tx: -12.5,
            ty: 40.0,
        };
        let src = [
            [0.0, 0.0],
            [10.0, 1.0],
            [3.0, 7.0],
            [-4.0, 2.5],
            [6.0, -3.0],
        ];
        let dst: Vec<_> = src.iter().map(|&p| truth.apply(p)).collect();
        let fit = Similarity::fit(&src, &dst).unwrap();
        assert!((fit.scale() - 1.7).abs() < 1e-12 && (fit.angle() - 0.3).abs() < 1e-12);
        assert!(close([fit.tx, fit.ty], [-12.5, 40.0]));
        let inv = fit.inverse().unwrap();
        for p in src {
            assert!(close(inv.apply(fit.apply(p)), p));
        }
    }

    #[test]
    fn is_the_least_squares_answer_for_noisy_points() {
        // Points of a square, with the destination's corners pushed out symmetrically: the best
        // similarity is a pure scale by the mean stretch, no rotation or shift.
        let src = [[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]];
        let dst = [[-2.2, -2.2], [1.8, -1.8], [2.2, 2.2], [-1.8, 1.8]];
        let fit = Similarity::fit(&src, &dst).unwrap();
        assert!(
            (fit.a - 2.0).abs() < 1e-12 && fit.b.abs() < 1e-12,
            "{fit:?}"
        );
        assert!(fit.tx.abs() < 1e-12 && fit.ty.abs() < 1e-12);
        // Any perturbation of the answer increases the squared error.
        let err = |s: &Similarity| -> f64 {
            src.iter()
                .zip(&dst)
                .map(|(&p, q)| {
                    let r = s.apply(p);
                    (r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)
                })
                .sum()
        };
        let e0 = err(&fit);
        for d in [[1e-3, 0.0], [0.0, 1e-3], [-1e-3, 0.0]] {
            let s = Similarity {
                a: fit.a + d[0],
                b: fit.b + d[1],
                ..fit
            };
            assert!(err(&s) > e0);
        }
    }

    #[test]
    fn degenerate_inputs_have_no_fit() {
        let p = [[3.0, 3.0]; 5];
        assert!(Similarity::fit(
            &p,
            &[[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]
        )
        .is_none());
        assert!(Similarity::fit(&[[0.0, 0.0]], &[[1.0, 1.0]]).is_none());
        assert!(
            Similarity::fit(&[[0.0, 0.0], [f64::NAN, 1.0]], &[[0.0, 0.0], [1.0, 1.0]]).is_none()
        );
        assert!(Similarity::fit(&[[0.0, 0.0], [1.0, 1.0]], &[[0.0, 0.0]]).is_none());
        let zero = Similarity {
            a: 0.0,
            b: 0.0,
            tx: 1.0,
            ty: 1.0,
        };
        assert!(zero.inverse().is_none());
    }
}

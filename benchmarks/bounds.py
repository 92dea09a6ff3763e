"""How loose are the explicit constants of Lemmas C.15 and C.16?  measured / bound, per family.

    python benchmarks/bounds.py [--n 64 --d 8 --R 2 --samples 300]

For each family of b, with A (n, d) Gaussian scaled to ||A|| = R and points x with ||x|| ≤ R
(plus points that saturate the softmax), it reports
  M: max_x ||B_exp + B_cent|| against M(b)                         (theory.bounds.B_norm_bound)
  l: min_x λ_min(∇²L) against l = (min w² − M) σ_min(A)², w² = 2 M (theory.bounds.strong_convexity)
  L: max_{x,y} ||∇²L(x) − ∇²L(y)|| / ||x − y|| against L_H     (theory.bounds.hessian_lipschitz)
and the paper's exp(O(R² + log n)) read as n e^{R²}. Ratios near 1 mean tight; the maxima are
over random samples, so they are lower estimates of the true suprema.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import machine, markdown_table
from theory import SoftmaxRegression, bounds

FAMILIES = {
    "simplex, spread": lambda rng, n: rng.dirichlet(np.ones(n)),
    "simplex, peaked": lambda rng, n: rng.dirichlet(np.full(n, 0.05)),
    "one-hot": lambda rng, n: np.eye(n)[rng.integers(n)],
    "signed, N(0,1)": lambda rng, n: rng.standard_normal(n),
}


def sample_points(rng, d: int, R: float, A: np.ndarray, count: int) -> list[np.ndarray]:
    """Random x with ||x|| ≤ R, half of them along A's top right-singular vector (saturating)."""
    top = np.linalg.svd(A, full_matrices=False)[2][0]
    pts = []
    for i in range(count):
        if i % 2:
            x = rng.standard_normal(d)
            x *= R * rng.random() / np.linalg.norm(x)
        else:
            x = top * R * rng.uniform(-1, 1) + rng.standard_normal(d) * 0.05
        pts.append(x)
    return pts


def measure(family: str, n: int, d: int, R: float, samples: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    A *= R / np.linalg.norm(A, 2)
    b = FAMILIES[family](rng, n)
    M = bounds.B_norm_bound(b)
    prob = SoftmaxRegression(A, b, np.full(n, np.sqrt(2 * M)))
    pts = sample_points(rng, d, R, A, samples)
    M_meas = max(np.linalg.norm(prob.B(x) - np.diag(prob.w2), 2) for x in pts)
    l_meas = min(np.linalg.eigvalsh(prob.hessian(x))[0] for x in pts)
    l_bound = bounds.strong_convexity(A, b, prob.w)
    L_meas = 0.0
    for x in pts:
        y = x + rng.standard_normal(d) * 10.0 ** rng.uniform(-3, 0)
        L_meas = max(
            L_meas, np.linalg.norm(prob.hessian(x) - prob.hessian(y), 2) / np.linalg.norm(x - y)
        )
    L_bound = bounds.hessian_lipschitz(A, b)
    return [
        family,
        f"{M_meas:.3g}",
        f"{M:.3g}",
        f"{M_meas / M:.3f}",
        f"{bounds.paper_constant(R, n):.3g}",
        f"{l_meas:.3g}",
        f"{l_bound:.3g}",
        f"{l_bound / l_meas:.3f}",
        f"{L_meas:.3g}",
        f"{L_bound:.3g}",
        f"{L_meas / L_bound:.4f}",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--R", type=float, default=2.0)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = [measure(f, args.n, args.d, args.R, args.samples, args.seed) for f in FAMILIES]
    print(f"n = {args.n}, d = {args.d}, ||A|| = R = {args.R}, {args.samples} points; {machine()}\n")
    print(
        markdown_table(
            [
                "b family",
                "M meas",
                "M(b)",
                "meas/M",
                "n e^{R²}",
                "λmin meas",
                "l bound",
                "l/λmin",
                "L meas",
                "L_H",
                "meas/L_H",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()

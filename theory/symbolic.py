"""Independent reference: sympy derivations of appendix C from the definitions alone.

Two checks, for small n and d (say n = 3, d = 2):

* :func:`z_space_identities` — *exact*. With ``u_i = e^{z_i}`` as positive symbols, ``f = u / Σu``
  (Def. C.4) is a rational function, ``∂/∂z_i = u_i ∂/∂u_i``, and sympy's Hessians of
  ``L_exp`` and ``L_cent`` in z are compared with the closed forms ``B_exp`` and ``B_cent`` of
  :mod:`theory.appendix` (rebuilt here symbolically) by ``cancel(difference) == 0``.
* :func:`derivatives_at` — *high precision*. The whole objective in x, with A, b, w, x symbols,
  differentiated by sympy and evaluated at a given (rational) point with ``dps`` digits, giving
  loss parts, gradients and Hessians to compare with the float64 closed forms.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp


def _softmax(z):
    e = [sp.exp(zi) for zi in z]
    total = sum(e)
    return [ei / total for ei in e]


@lru_cache(maxsize=8)
def _objective(n: int, d: int):
    """Symbols and the three losses as sympy expressions of A (n×d), b, w, x (Defs. C.6–C.8)."""
    A = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"A{i}{j}", real=True))
    b = sp.symbols(f"b0:{n}", real=True)
    w = sp.symbols(f"w0:{n}", real=True)
    x = sp.symbols(f"x0:{d}", real=True)
    z = list(A * sp.Matrix(x))
    f = _softmax(z)
    L_exp = sp.Rational(1, 2) * sum((fi - bi) ** 2 for fi, bi in zip(f, b))
    L_cent = -sum(bi * sp.log(fi) for bi, fi in zip(b, f))
    L_reg = sp.Rational(1, 2) * sum((wi * zi) ** 2 for wi, zi in zip(w, z))
    return (A, b, w, x), {"exp": L_exp, "cent": L_cent, "reg": L_reg}


@lru_cache(maxsize=8)
def _compiled(n: int, d: int):
    (A, b, w, x), parts = _objective(n, d)
    args = [*A, *b, *w, *x]
    out = {}
    for name, expr in parts.items():
        g = [sp.diff(expr, xi) for xi in x]
        H = [[sp.diff(gi, xj) for xj in x] for gi in g]
        out[name] = tuple(sp.lambdify(args, e, modules="mpmath") for e in (expr, g, H))
    return out


def derivatives_at(A, b, w, x, dps: int = 40) -> dict[str, dict[str, np.ndarray]]:
    """Loss parts, gradients and Hessians from sympy, evaluated with ``dps`` digits.

    Returns ``{"exp"|"cent"|"reg": {"loss": float, "grad": (d,), "hess": (d, d)}}``, rounded to
    float64 only at the end. Inputs are converted to exact rationals first.
    """
    import mpmath

    A, b, w, x = (np.asarray(a, dtype=np.float64) for a in (A, b, w, x))
    n, d = A.shape
    vals = [sp.Rational(float(v)) for v in [*A.ravel(), *b, *w, *x]]
    out: dict = {}
    with mpmath.workdps(dps):
        args = [mpmath.mpf(sp.Float(v, dps)) for v in vals]
        for name, (fL, fg, fH) in _compiled(n, d).items():
            out[name] = {
                "loss": float(fL(*args)),
                "grad": np.array([float(v) for v in fg(*args)]),
                "hess": np.array([[float(v) for v in row] for row in fH(*args)]),
            }
    return out


def z_space_identities(n: int = 3) -> dict[str, bool]:
    """Exact checks that sympy's z-Hessians equal the closed forms (B_exp: DLS23; B_cent: Def. C.13, Lemma C.14).

    Returns ``{"B_exp": bool, "B_cent": bool, "grad_exp": bool, "grad_cent": bool}``; the gradient
    identities are ``∇_z L_exp = J c`` and ``∇_z L_cent = s f − b`` (∇L_cent: Lemma C.10 part 3; ∇L_exp: DLS23; both in z).
    """
    u = sp.symbols(f"u0:{n}", positive=True)
    b = sp.symbols(f"b0:{n}", real=True)
    total = sum(u)
    f = [ui / total for ui in u]

    def dz(expr, i):  # d/dz_i with u_i = exp(z_i)
        return u[i] * sp.diff(expr, u[i])

    L_exp = sp.Rational(1, 2) * sum((fi - bi) ** 2 for fi, bi in zip(f, b))
    L_cent = -sum(bi * sp.log(fi) for bi, fi in zip(b, f))
    s = sum(b)
    fv, bv = sp.Matrix(f), sp.Matrix(b)
    J = sp.diag(*f) - fv * fv.T
    q = sp.Matrix([(2 * fi - bi) * fi for fi, bi in zip(f, b)])
    B_exp = (
        ((3 * fv - 2 * bv).dot(fv)) * fv * fv.T
        - ((fv - bv).dot(fv)) * sp.diag(*f)
        + sp.diag(*q)
        - q * fv.T
        - fv * q.T
    )
    B_cent = s * J
    grad_exp = [dz(L_exp, i) for i in range(n)]
    grad_cent = [dz(L_cent, i) for i in range(n)]
    H_exp = sp.Matrix(n, n, lambda i, j: dz(grad_exp[i], j))
    H_cent = sp.Matrix(n, n, lambda i, j: dz(grad_cent[i], j))

    def zero(M) -> bool:
        return all(sp.cancel(sp.together(e)) == 0 for e in M)

    c = fv - bv
    return {
        "grad_exp": zero(sp.Matrix(grad_exp) - J * c),
        "grad_cent": zero(sp.Matrix(grad_cent) - (s * fv - bv)),
        "B_exp": zero(H_exp - B_exp),
        "B_cent": zero(H_cent - B_cent),
    }

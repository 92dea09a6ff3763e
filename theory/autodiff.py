"""Independent reference: the objective of appendix C written in torch (float64), differentiated by
``torch.func``. Nothing here shares algebra with :mod:`theory.objective`; the tests and
``benchmarks/derivatives.py`` compare the closed forms against it.

All functions take numpy arrays A (n, d), b (n,), w (n,), x (d,) and return numpy float64.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import func


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def loss_parts_fn(A, b, w):
    """Return ``x ↦ (L_exp, L_cent, L_reg)`` as torch scalars (Defs. C.6–C.8, by definition)."""
    A, b, w = _t(A), _t(b), _t(w)

    def parts(x: torch.Tensor):
        z = A @ x
        logf = torch.log_softmax(z, dim=0)
        f = torch.exp(logf)
        return 0.5 * torch.sum((f - b) ** 2), -torch.sum(b * logf), 0.5 * torch.sum((w * z) ** 2)

    return parts


def loss_fn(A, b, w, part: str = "all"):
    """``x ↦ L(x)`` (torch), or one part: ``part`` in {"all", "exp", "cent", "reg"}."""
    parts = loss_parts_fn(A, b, w)
    index = {"exp": 0, "cent": 1, "reg": 2}
    if part == "all":
        return lambda x: sum(parts(x))
    if part not in index:
        raise ValueError(f"part must be one of 'all', 'exp', 'cent', 'reg'; got {part!r}.")
    return lambda x: parts(x)[index[part]]


def loss(A, b, w, x, part: str = "all") -> float:
    return float(loss_fn(A, b, w, part)(_t(x)))


def gradient(A, b, w, x, part: str = "all") -> np.ndarray:
    """``∇L(x)`` (d,) by reverse mode."""
    return func.grad(loss_fn(A, b, w, part))(_t(x)).numpy()


def hessian(A, b, w, x, part: str = "all") -> np.ndarray:
    """``∇²L(x)`` (d, d) by ``torch.func.hessian`` (forward-over-reverse)."""
    return func.hessian(loss_fn(A, b, w, part))(_t(x)).numpy()


def hessp(A, b, w, x, v, part: str = "all") -> np.ndarray:
    """``∇²L(x) v`` (d,) by forward-over-reverse (one jvp of the gradient)."""
    g = func.grad(loss_fn(A, b, w, part))
    return func.jvp(g, (_t(x),), (_t(v),))[1].numpy()


def z_hessian(b, z, part: str = "exp") -> np.ndarray:
    """The Hessian in z (n, n) of ``L_exp`` or ``L_cent`` as functions of z = A x: the matrix B."""
    bt = _t(b)

    def of_z(zt):
        logf = torch.log_softmax(zt, dim=0)
        if part == "exp":
            return 0.5 * torch.sum((torch.exp(logf) - bt) ** 2)
        return -torch.sum(bt * logf)

    return func.hessian(of_z)(_t(z)).numpy()


def softmax_jacobian(A, x) -> np.ndarray:
    """``df/dx`` (n, d) by reverse mode (Lemma C.9's reference)."""
    A = _t(A)
    return func.jacrev(lambda xt: torch.softmax(A @ xt, dim=0))(_t(x)).numpy()

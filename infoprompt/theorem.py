r"""Theorem 3.1 against the trainer: the convex subproblems of a finished run as theory instances,
Theorem D.1's conditions on them, and the curvature of eq. 11 where the theorem stops.

``python -m infoprompt theory RUN_DIR [--out DIR]`` loads the run's final checkpoint
(``last.safetensors``, the paper's "after 30 epochs"; ``--checkpoint best`` for the other) and its
training draw (re-read from ``config.data_dir``, or ``--data-dir``), recomputes every trained
quantity in float32 as training did, then casts to float64 for :mod:`theory`:

(a) **L_pred in the head θ** for the frozen representations Z_i (the mask states of the prompted
    pass at the trained prompts): multinomial logistic regression, one group per example, rows
    ``e_c ⊗ [Z_i, 1]`` (d = C (D + 1), x = vec([W | bias]) row-major), b the one-hot labels,
    e = 0. ``L = Σ_i CE_i`` (the trainer's L_pred is L / N).
(b) **The head loss in W1** for fixed prompts P and θ_X (where the method has one): per example a
    softmax over K candidates (its own P, then K − 1 token embeddings P_k drawn from its text by
    the trainer's own sampler, seeded), scores ``P_kᵀ W1 θ_i``. θ_i lies in the span of the head's
    class rows (both ``theta`` modes), so with V (D, r) an orthonormal basis of span{θ_i} (SVD),
    ``P_kᵀ W1 θ_i = <vec(W1 V), P_k ⊗ Vᵀθ_i>``: the variable is ``u = vec(W1 V)`` (d = D r), which
    the loss depends on entirely (the rest of W1 never enters it). ``L = Σ_i NCE_i`` (not × γ).

Each is solved in three versions (``variants``): ``trained`` — the objective as the trainer has
it, no regulariser (w = 0: Theorem D.1's Lemma C.15 fails; when the trained point classifies every
example, L(t x) → 0 as t → ∞ and there is no minimiser at all); ``ridge`` — plus ``½ λ N ||x||²``
(λ = the run's weight_decay, read as an L2 term, through d singleton rows); ``theorem`` — rows
``[A; I]`` with w² = 101 M on every row, the smallest regulariser under which Lemma C.15's sandwich
holds. For each: n, d, G, R, the conditions (``theory.grouped.theorem_conditions``, R =
max(||A||₂, ||x*||₂) so that the ball conditions hold by choice of R), the optimum (default solver,
checked by exact Newton) and the trained point's gap (loss and distance).

(c) **Where the theorem stops**: the extreme eigenvalues of the Hessian of eq. 11,
    ``(1/N) Σ_i [CE_i + β NCE_rep,i + γ NCE_head,i]`` over the training draw, in the prompt
    generator's parameters (W_down, W_up; the head, critics and encoder fixed), by Lanczos
    (full reorthogonalisation) on Hessian-vector products (double backward, float64 on CPU,
    the random draws of the InfoNCE terms fixed by a seed per batch). Ritz values lie inside the
    spectrum, so a negative one proves negative curvature: eq. 11 is not convex in the prompt
    generator, and Theorem 3.1's guarantee does not cover prompt tuning itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from infoprompt.checkpoint import load_params, read_checkpoint
from infoprompt.config import ConfigError, RunConfig
from infoprompt.curvature import batches, hessian_extremes
from infoprompt.session import Session, build_session

if TYPE_CHECKING:  # theory is imported where it is used, not when the command line loads
    from theory import GroupedSoftmaxRegression, SoftmaxRegression
    from theory.solver import SolveResult

SOLVE_TOL = 1e-8  # max |∇L| at the optimum (L is a sum over ~64 examples, O(1) to O(100))
ESCAPE_ITERS = 30  # iterations shown on the unregularised problem (it has no minimiser)


def load_trained(
    run_dir: str | Path, data_dir: str | Path | None = None, checkpoint: str = "last"
) -> Session:
    """The run's session (training draw encoded and cached) with the checkpoint's parameters."""
    path = Path(run_dir) / f"{checkpoint}.safetensors"
    if not path.is_file():
        raise ConfigError(f"{path} not found; pass the folder of one finished run (one seed)")
    tensors, meta = read_checkpoint(path)
    config = RunConfig.from_dict(meta["config"])
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=str(data_dir))  # RunConfig is frozen
    if not Path(config.data_dir).is_dir():
        raise ConfigError(
            f"data_dir {config.data_dir!r} of the run is not a folder; pass --data-dir"
        )
    session = build_session(config, log=lambda line: None)
    if session.model.prompts is None or session.model.method.trains_encoder:
        raise ConfigError(
            f"method {config.method!r}: the bridge needs prompts and a frozen encoder"
        )
    load_params(session.model, tensors)
    session.model.train(False)
    return session


@torch.no_grad()
def trained_quantities(
    session: Session, seed: int = 0, size: int = 16
) -> tuple[dict[str, np.ndarray], dict[str, float | None]]:
    """Z, logits, P (mean prompt), θ_X, negative prompts and the trainer's own L_pred and NCE_head
    (float32, sums over the training draw) at the trained point; negatives drawn with ``seed``."""
    m = session.model
    out: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("z", "logits", "p", "theta", "neg", "labels")
    }
    pred = head = 0.0
    for i, b in enumerate(batches(session, size)):
        prompts = m.make_prompts(len(b["input_ids"]), b["pooled"])
        z = m.encode(b["input_ids"], b["attention_mask"], b["mask_pos"], prompts, b["prompt_pos"])
        logits = m.head(z).float()
        pred += float(F.cross_entropy(logits, b["labels"], reduction="sum"))
        out["z"].append(z)
        out["logits"].append(logits)
        out["labels"].append(b["labels"])
        if m.head_mi is not None:
            assert prompts is not None  # load_trained refuses a method without prompts
            torch.manual_seed(seed * 1000 + i)
            p, theta = prompts.float().mean(1), m._theta(logits, b["labels"])
            neg = m._negatives(b["input_ids"])  # (B, K − 1, D), the trainer's own sampler
            head += float(m.head_mi(p, theta, neg)) * len(p)
            out["p"].append(p)
            out["theta"].append(theta)
            out["neg"].append(neg)
    q = {k: torch.cat(v).double().numpy() for k, v in out.items() if v}
    q["labels"] = q["labels"].astype(np.int64)
    return q, {"pred": pred, "head": head if m.head_mi is not None else None}


def pred_instance(
    q: dict[str, np.ndarray], head: nn.Linear
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a): rows e_c ⊗ [Z_i, 1], b one-hot, groups = example; x_trained = vec([W | bias])."""
    Z1 = np.hstack([q["z"], np.ones((len(q["z"]), 1))])  # (N, D + 1)
    C = head.weight.shape[0]
    A = np.einsum("kc,ij->ikcj", np.eye(C), Z1).reshape(-1, C * Z1.shape[1])
    x = torch.cat([head.weight, head.bias[:, None]], 1).detach().double().numpy().ravel()
    return A, np.eye(C)[q["labels"]].ravel(), np.repeat(np.arange(len(Z1)), C), x


def head_instance(
    q: dict[str, np.ndarray], W1: torch.Tensor, head_weight: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(b): u = vec(W1 V), rows P_k ⊗ Vᵀθ_i (positive first), b = e_1 per group; V (D, C) an
    orthonormal basis of the head's class rows, which span every θ_i (float32 rounding aside:
    the largest ``||θ_i − V Vᵀθ_i|| / ||θ_i||`` is returned as the fifth value)."""
    V, _ = np.linalg.qr(head_weight.detach().double().numpy().T)  # (D, C)
    off = np.linalg.norm(q["theta"] - q["theta"] @ V @ V.T, axis=1)
    span_residual = float(np.max(off / np.linalg.norm(q["theta"], axis=1)))
    cands = np.concatenate([q["p"][:, None], q["neg"]], 1)  # (N, K, D)
    N, K, D = cands.shape
    c = q["theta"] @ V  # (N, r)
    A = np.einsum("nkd,nj->nkdj", cands, c).reshape(N * K, D * V.shape[1])
    b = np.tile(np.eye(K)[0], N)
    x = (W1.detach().double().numpy() @ V).ravel()
    return A, b, np.repeat(np.arange(N), K), x, span_residual


def variants(
    A: np.ndarray, b: np.ndarray, groups: np.ndarray, lam: float
) -> dict[str, GroupedSoftmaxRegression]:
    """{"trained": w = 0, "ridge": + ½ λ N ||x||², "theorem": [A; I], w² = 101 M on every row}."""
    from theory import GroupedSoftmaxRegression
    from theory.bounds import SANDWICH_FACTOR
    from theory.grouped import B_norm_bound

    n, d = A.shape
    N = len(np.unique(groups))
    A2, b2 = np.vstack([A, np.eye(d)]), np.r_[b, np.zeros(d)]
    g2 = np.r_[groups, groups.max() + 1 + np.arange(d)]
    make = lambda A_, b_, w_, g_: GroupedSoftmaxRegression(A_, b_, w_, g_, exp_weight=0.0)
    trained = make(A, b, 0.0, groups)
    w_theorem = np.sqrt(SANDWICH_FACTOR * B_norm_bound(trained))
    return {
        "trained": trained,
        "ridge": make(A2, b2, np.r_[np.zeros(n), np.full(d, np.sqrt(lam * N))], g2),
        "theorem": make(A2, b2, w_theorem, g2),
    }


def _solve(
    prob: SoftmaxRegression, method: str, x0: np.ndarray | None = None, max_iter: int = 200
) -> tuple[SolveResult, float, list[str]]:
    from theory import solve

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        res = solve(prob, method=method, tol=SOLVE_TOL, x0=x0, max_iter=max_iter)
    return res, time.perf_counter() - t0, sorted({type(w.message).__name__ for w in caught})


def analyse(prob: GroupedSoftmaxRegression, x_tr: np.ndarray, name: str) -> dict[str, Any]:
    """Sizes, conditions, optimum and gap for one instance (module docstring)."""
    from theory.grouped import theorem_conditions

    A = np.asarray(prob.A)
    sv = np.linalg.svd(A, compute_uv=False)  # once: ||A||₂ and σ_min(A)
    norm_A = float(sv[0])
    rep: dict[str, Any] = {
        "name": name, "n": prob.n, "d": prob.d, "groups": prob.n_groups, "norm_A": norm_A,
        "max_row_norm": float(np.max(np.linalg.norm(A, axis=1))), "L_trained": prob.loss(x_tr),
        "norm_x_trained": float(np.linalg.norm(x_tr)),
    }  # fmt: skip
    if not prob.w2.any():
        z = A @ x_tr
        margin = [z[prob.groups == g][np.argmax(prob.b[prob.groups == g])] -
                  np.max(np.delete(z[prob.groups == g], np.argmax(prob.b[prob.groups == g])))
                  for g in range(prob.n_groups)]  # fmt: skip
        rep["separable"] = bool(min(margin) > 0)
        rep["L_scaled"] = {t: prob.loss(t * x_tr) for t in (2.0, 10.0)}
        res, secs, warned = _solve(prob, "sketched-subspace-newton", x_tr, ESCAPE_ITERS)
        rep["escape"] = {"loss": res.fun, "norm_x": float(np.linalg.norm(res.x)), "nit": res.nit,
                         "message": res.message, "warnings": warned}  # fmt: skip
        x_star = None
    else:
        res, secs, warned = _solve(prob, "sketched-subspace-newton")
        check, _, _ = _solve(prob, "newton")
        x_star = res.x
        rep["optimum"] = {"method": res.method, "success": res.success, "nit": res.nit,
                          "seconds": secs, "loss": res.fun, "norm_x": float(np.linalg.norm(x_star)),
                          "newton_agrees": float(np.linalg.norm(check.x - x_star)), "warnings": warned}  # fmt: skip
        rep["gap"] = {"loss": rep["L_trained"] - res.fun, "distance": float(np.linalg.norm(x_tr - x_star)),
                      "relative_distance": float(np.linalg.norm(x_tr - x_star) / max(np.linalg.norm(x_star), 1e-300))}  # fmt: skip
    R = max(norm_A, 0.0 if x_star is None else float(np.linalg.norm(x_star)))
    conds = theorem_conditions(prob, R, x0=np.zeros(prob.d), x_star=x_star, sv=sv)
    if x_star is not None:  # the same condition, started at the trained point
        conds["good_start_trained"] = theorem_conditions(prob, R, x_tr, x_star, sv=sv)["good_start"]
    rep["R"] = R  # the paper's constant exp(O(R² + log n)) read as n e^{R²}, as log10:
    rep["paper_constant_log10"] = float(np.log10(prob.n) + R**2 / np.log(10))  # log10 e = 1/ln 10
    rep["conditions"] = {k: {"statement": c.statement, "lhs": c.lhs, "rhs": c.rhs, "holds": c.holds}
                         for k, c in conds.items()}  # fmt: skip
    return rep


SCIPY = ("scipy-trust-exact", "scipy-trust-krylov", "scipy-newton-cg", "scipy-l-bfgs-b")


def compare_solvers(
    prob: SoftmaxRegression,
    repeats: int = 3,
    tol: float = SOLVE_TOL,
    methods: tuple[str, ...] = ("sketched-subspace-newton", *SCIPY),
) -> dict[str, Any]:
    """Best-of-``repeats`` wall time of each method on ``prob`` (interleaved: repeat r runs every
    method once), the scipy anchors given the theory's closed-form derivatives; ``ratio`` = the
    default's time / the fastest successful scipy method's."""
    times: dict[str, list[float]] = {m: [] for m in methods}
    last: dict[str, SolveResult] = {}
    for _ in range(repeats):
        for m in methods:
            last[m], secs, _ = _solve(prob, m, max_iter=1000)
            times[m].append(secs)
    rows = {m: {"seconds": min(t), "nit": last[m].nit, "success": last[m].success,
                "loss": last[m].fun} for m, t in times.items()}  # fmt: skip
    ok = [m for m in methods[1:] if rows[m]["success"]]
    best = min(ok, key=lambda m: rows[m]["seconds"]) if ok else None
    ratio = rows[methods[0]]["seconds"] / rows[best]["seconds"] if best else float("nan")
    return {"methods": rows, "best_scipy": best, "ratio": ratio}


# -- (c) eq. 11 in the prompt generator's parameters, float64 -----------------------------------


def run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    checkpoint: str = "last",
    steps: int = 20,
    seed: int = 0,
    out: str | Path | None = None,
    hessian: bool = True,
) -> dict[str, Any]:
    """The whole report (module docstring); with ``out``, the instances as .npz and report.json."""
    session = load_trained(run_dir, data_dir, checkpoint)
    cfg, m = session.config, session.model
    q, trainer = trained_quantities(session, seed)
    report: dict[str, Any] = {
        "run": str(run_dir), "checkpoint": checkpoint, "method": cfg.method,
        "N": len(q["labels"]), "trainer_sums": trainer, "instances": {},
    }  # fmt: skip
    subs = {"pred": pred_instance(q, m.head)}
    if m.head_mi is not None:
        head = head_instance(q, m.head_mi.W1, m.head.weight)
        subs["head"], report["theta_span_residual"] = head[:4], head[4]
    for sub, (A, b, g, x_tr) in subs.items():
        for name, prob in variants(A, b, g, cfg.weight_decay).items():
            report["instances"][f"{sub}/{name}"] = analyse(prob, x_tr, f"{sub}/{name}")
            if out is not None:
                Path(out).mkdir(parents=True, exist_ok=True)
                np.savez(Path(out) / f"{sub}_{name}.npz", A=np.asarray(prob.A), b=prob.b,
                         w=prob.w, groups=prob.groups, exp_weight=prob.exp_weight, x_trained=x_tr)  # fmt: skip
    if hessian:
        report["hessian"] = hessian_extremes(session, steps, seed=seed)
    if out is not None:
        (Path(out) / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_report(r: dict[str, Any]) -> str:
    lines = [f"# Theorem 3.1 against {r['run']} ({r['method']}, {r['checkpoint']}, N = {r['N']})",
             f"trainer's sums at the trained point (float32): L_pred {r['trainer_sums']['pred']:.6g}, "
             f"NCE_head {r['trainer_sums']['head']}", "",
             "| instance | n | d | G | ||A||₂ | R | L(trained) | L* | gap L | ||x_tr − x*|| | ||x*|| | solver |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, i in r["instances"].items():
        if "optimum" in i:
            o, g = i["optimum"], i["gap"]
            tail = (f"{o['loss']:.6g} | {g['loss']:.3g} | {g['distance']:.4g} | {o['norm_x']:.4g} | "
                    f"{o['nit']} it, {o['seconds']:.2f} s, Newton Δx {o['newton_agrees']:.1e} |")  # fmt: skip
        else:
            e = i["escape"]
            tail = (f"inf = 0, none attained (separable: {i['separable']}; L(2x_tr) "
                    f"{i['L_scaled'][2.0]:.3g}, L(10x_tr) {i['L_scaled'][10.0]:.3g}) | – | – | – | "
                    f"{e['nit']} it from x_tr: L {e['loss']:.3g}, ||x|| {e['norm_x']:.3g} |")  # fmt: skip
        lines.append(f"| {k} | {i['n']} | {i['d']} | {i['groups']} | {i['norm_A']:.4g} | "
                     f"{i['R']:.4g} | {i['L_trained']:.6g} | {tail}")  # fmt: skip
    lines += [
        "",
        "| instance | condition | statement | lhs | rhs | holds |",
        "|---|---|---|---|---|---|",
    ]
    for k, i in r["instances"].items():
        for name, c in i["conditions"].items():
            lines.append(f"| {k} | {name} | {c['statement']} | {c['lhs']:.4g} | {c['rhs']:.4g} | "
                         f"{'yes' if c['holds'] else 'NO'} |")  # fmt: skip
    if "hessian" in r:
        h = r["hessian"]
        lines += ["", f"Hessian of eq. 11 in {', '.join(h['names'])} ({h['params']} parameters, "
                  f"float64) at the trained point: L = {h['loss']:.6g}, ||∇L|| = {h['grad_norm']:.3g}; "
                  f"Lanczos {h['steps']} steps ({h['hvps']} HVPs, {h['seconds']:.0f} s): "
                  f"λ_min ≤ {h['lambda_min']:.4g} (residual {h['residual_min']:.2g}), "
                  f"λ_max ≥ {h['lambda_max']:.4g} (residual {h['residual_max']:.2g}); "
                  f"negative curvature: {'yes' if h['negative_curvature'] else 'not found'}"]  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m infoprompt theory", description=__doc__.split("\n")[0]
    )
    ap.add_argument("run_dir", help="one finished run's folder (holds last.safetensors)")
    ap.add_argument("--data-dir", default=None, help="the task's data folder (default: the run's)")
    ap.add_argument("--checkpoint", choices=("last", "best"), default="last")
    ap.add_argument("--lanczos-steps", type=int, default=20)
    ap.add_argument("--no-hessian", action="store_true", help="skip (c), the Lanczos part")
    ap.add_argument("--seed", type=int, default=0, help="seeds the InfoNCE draws and Lanczos")
    ap.add_argument("--out", default=None, help="folder for the instances (.npz) and report.json")
    a = ap.parse_args(argv)
    if a.lanczos_steps < 2:
        raise ConfigError(f"--lanczos-steps must be >= 2, got {a.lanczos_steps}")
    r = run(a.run_dir, a.data_dir, a.checkpoint, a.lanczos_steps, a.seed, a.out, not a.no_hessian)
    print(format_report(r))
    return 0

"""Shared machinery of the BTYD estimators: input handling, compression, maximum likelihood.

Every estimator follows the scikit-learn conventions: ``__init__`` only stores options, ``fit``
returns ``self`` and is idempotent, learned attributes end in ``_`` and raise
:class:`~loyaltykit.errors.NotFittedError` before ``fit``.

The fit maximises the log-likelihood over the logarithms of the (positive) parameters with
L-BFGS-B and the model's analytic gradient, on the data compressed to distinct rows with
weights. Standard errors come from the Hessian of the log-likelihood in log-parameters (central
differences of the analytic gradient) by the delta method; confidence intervals are computed on
the log scale and so always stay positive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs
import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import ndtri

from loyaltykit.errors import ConvergenceError, ModelInputError, NotFittedError

if TYPE_CHECKING:
    from scipy import optimize

FloatArray = npt.NDArray[np.float64]
Arrays = dict[str, FloatArray]
FrameLike = Any
"""A polars ``DataFrame`` or ``LazyFrame`` (pandas and pyarrow frames are accepted too)."""

TIME_UNIT_NAMES: dict[str, str] = {
    "s": "seconds",
    "min": "minutes",
    "H": "hours",
    "D": "days",
    "W": "weeks",
    "M": "months",
    "Q": "quarters",
    "Y": "years",
}
"""Time-unit codes (as in :func:`loyaltykit.analytics.summary`) and their names."""

__all__ = ["TIME_UNIT_NAMES", "BTYDModel", "Convergence", "distinct"]


# --------------------------------------------------------------------------------------------
# frames at the edge
# --------------------------------------------------------------------------------------------


def as_polars(frame: FrameLike, owner: str) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` as a polars frame: polars as is, pandas and pyarrow converted (eagerly)."""
    if isinstance(frame, pl.DataFrame | pl.LazyFrame):
        return frame
    module = type(frame).__module__.split(".")[0]
    if module in ("pandas", "pyarrow"):
        converted = pl.from_pandas(frame) if module == "pandas" else pl.from_arrow(frame)
        if isinstance(converted, pl.DataFrame):
            return converted
    raise ModelInputError(
        f"{owner}: expected a polars DataFrame or LazyFrame (or a pandas/pyarrow frame), got "
        f"{type(frame).__name__}; build one with polars.DataFrame({{...}})"
    )


def read_columns(
    frame: FrameLike,
    owner: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> Arrays:
    """Collect ``required`` (and present ``optional``) columns as float64 arrays, validated.

    :raises ModelInputError: a column is missing, not numeric, or holds nulls or non-finite values.
    """
    pf = as_polars(frame, owner)
    schema = pf.collect_schema() if isinstance(pf, pl.LazyFrame) else pf.schema
    missing = [c for c in required if c not in schema]
    if missing:
        raise ModelInputError(
            f"{owner}: missing column(s) {missing}; the frame has {list(schema.names())}. "
            "Build the per-customer summary with loyaltykit.analytics.summary(...) or rename your "
            "columns to frequency, recency, T (and monetary_value, periods, weights as needed)"
        )
    cols = [*required, *(c for c in optional if c in schema)]
    for c in cols:
        if not (schema[c].is_numeric() or schema[c] == pl.Boolean):
            raise ModelInputError(
                f"{owner}: column {c!r} has dtype {schema[c]}; it must be numeric"
            )
    df = pf.select(cols)
    eager = df.collect() if isinstance(df, pl.LazyFrame) else df
    out: Arrays = {}
    for c in cols:
        s = eager.get_column(c)
        if s.null_count():
            row = int(s.is_null().arg_max() or 0)
            raise ModelInputError(
                f"{owner}: column {c!r} has {s.null_count()} null value(s), first at row {row}; "
                "drop or fill them before fitting"
            )
        arr = s.cast(pl.Float64).to_numpy()
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argmax(bad))
            raise ModelInputError(
                f"{owner}: column {c!r} row {row} is {arr[row]!r}; values must be finite"
            )
        out[c] = np.ascontiguousarray(arr, dtype=np.float64)
    return out


def check_rule(
    owner: str, arrays: Arrays, column: str, bad: npt.NDArray[np.bool_], rule: str
) -> None:
    """Raise :class:`ModelInputError` naming the first row where ``bad`` holds."""
    if bad.any():
        row = int(np.argmax(bad))
        n = int(bad.sum())
        raise ModelInputError(
            f"{owner}: column {column!r} row {row} is {arrays[column][row]!r} "
            f"({n} row(s) in all): {rule}"
        )


def compress(
    arrays: Arrays, keys: Sequence[str], weights: FloatArray | None, *, ordered: bool = True
) -> Arrays:
    """Distinct rows of ``keys`` with their summed ``weights`` (a row count when ``None``).

    :param ordered: sort the distinct rows, so that sums over them run in a fixed order and fits
        of the same data are bit-identical whatever the (parallel) grouping did; ``False`` skips
        the sort for large inputs whose fit does not hinge on the last bits.
    """
    n = len(arrays[keys[0]])
    w = np.ones(n) if weights is None else weights
    df = pl.DataFrame({**{k: arrays[k] for k in keys}, "__w": w})
    grouped = df.group_by(list(keys)).agg(pl.col("__w").sum())
    if ordered:
        grouped = grouped.sort(list(keys))
    out = {k: grouped.get_column(k).to_numpy().astype(np.float64) for k in keys}
    out["weights"] = grouped.get_column("__w").to_numpy().astype(np.float64)
    return out


def grid_compress(data: Arrays, cells: int) -> Arrays | None:
    """``data`` (``frequency``, ``recency``, ``T``, ``weights``) with ``recency`` and ``T``
    rounded to a grid of ``cells`` steps over the longest ``T`` and compressed again, in linear
    time (a count per grid cell), sorted; ``None`` if there is nothing to round.

    Rounding is monotone, so ``recency <= T`` and ``recency = 0`` for ``frequency = 0`` hold
    on the grid too.
    """
    t_max = float(data["T"].max()) if data["T"].size else 0.0
    if not t_max > 0:
        return None
    step = t_max / cells
    (xu,), x_inv = distinct(data["frequency"])
    side = cells + 1
    i = np.clip(np.rint(data["recency"] / step), 0, cells).astype(np.int64)
    j = np.clip(np.rint(data["T"] / step), 0, cells).astype(np.int64)
    code = (x_inv.astype(np.int64) * side + i) * side + j
    span = xu.size * side * side
    if span > 20_000_000:
        return None
    counts = np.bincount(code, weights=data["weights"], minlength=span)
    present = np.flatnonzero(counts > 0)
    j_out = present % side
    i_out = (present // side) % side
    return {
        "frequency": xu[present // (side * side)],
        "recency": (i_out * step).astype(np.float64),
        "T": (j_out * step).astype(np.float64),
        "weights": np.asarray(counts[present], dtype=np.float64),
    }


def _dense_codes(
    columns: Sequence[FloatArray],
) -> tuple[tuple[FloatArray, ...], npt.NDArray[np.intp]] | None:
    """:func:`distinct` in linear time when the columns hold small non-negative whole numbers
    (frequencies; T and recency in days), else ``None``."""
    if not columns or columns[0].size < 50_000:
        return None
    sizes = []
    for col in columns:
        top = float(col.max()) if col.size else 0.0
        if col.min() < 0 or top > 10_000_000 or not np.array_equal(col, np.floor(col)):
            return None
        sizes.append(int(top) + 1)
    span = 1
    for size in sizes:
        span *= size
    if span > 20_000_000:
        return None
    code = columns[0].astype(np.intp)
    for col, size in zip(columns[1:], sizes[1:], strict=True):
        code = code * size + col.astype(np.intp)
    seen = np.zeros(span, dtype=bool)
    seen[code] = True
    present = np.flatnonzero(seen)
    lookup = np.zeros(span, dtype=np.intp)
    lookup[present] = np.arange(present.size)
    parts = []
    rest = present
    for size in reversed(sizes[1:]):
        parts.append((rest % size).astype(np.float64))
        rest = rest // size
    parts.append(rest.astype(np.float64))
    return tuple(reversed(parts)), lookup[code]


def distinct(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], npt.NDArray[np.intp]]:
    """Distinct rows of one or two float columns and the inverse index (fast 1-D sorts)."""
    dense = _dense_codes(columns)
    if dense is not None:
        return dense
    if len(columns) == 1:
        uniq, inverse = np.unique(columns[0], return_inverse=True)
        return (uniq,), inverse.ravel().astype(np.intp)
    if len(columns) == 2:
        if columns[0].size > 100_000:  # hashing beats sorting for large inputs
            pairs = pl.DataFrame({"a": columns[0], "b": columns[1]})
            found = pairs.unique().with_row_index("i")
            joined = pairs.join(found, on=["a", "b"], how="left", maintain_order="left")
            return (
                (found.get_column("a").to_numpy(), found.get_column("b").to_numpy()),
                joined.get_column("i").to_numpy().astype(np.intp),
            )
        key = columns[0] + 1j * columns[1]  # complex numbers sort by (real, imag)
        uniq_c, inverse = np.unique(key, return_inverse=True)
        return (uniq_c.real.copy(), uniq_c.imag.copy()), inverse.ravel().astype(np.intp)
    raise ValueError("distinct takes one or two columns")


def with_columns(
    frame: FrameLike,
    owner: str,
    inputs: Sequence[str],
    compute: Callable[[Arrays], Mapping[str, FloatArray]],
    names: Sequence[str],
) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` with the Float64 columns ``names`` computed from ``inputs`` by ``compute``.

    Eager frames are computed at once; lazy frames stay lazy (the computation runs when collected).
    """
    pf = as_polars(frame, owner)
    if isinstance(pf, pl.DataFrame):
        values = compute(read_columns(pf, owner, inputs))
        return pf.with_columns(pl.Series(n, np.asarray(values[n], dtype=np.float64)) for n in names)
    schema = pf.collect_schema()
    missing = [c for c in inputs if c not in schema]
    if missing:
        read_columns(pf.head(0), owner, inputs)  # raises the standard message

    def batch(s: pl.Series) -> pl.Series:
        values = compute(read_columns(s.struct.unnest(), owner, inputs))
        return pl.DataFrame({n: np.asarray(values[n], dtype=np.float64) for n in names}).to_struct(
            "__out"
        )

    dtype = pl.Struct(dict.fromkeys(names, pl.Float64))
    return pf.with_columns(
        pl.struct(list(inputs)).map_batches(batch, return_dtype=dtype).alias("__out")
    ).unnest("__out")


# --------------------------------------------------------------------------------------------
# fitted state
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Convergence:
    """How a maximum-likelihood fit ended."""

    success: bool
    """Whether the optimiser reported convergence."""
    message: str
    """The optimiser's message."""
    iterations: int
    """Optimiser iterations."""
    function_evaluations: int
    """Evaluations of the full-data log-likelihood (with its gradient) by the final optimiser
    (a warm start's evaluations on coarsened data are not counted)."""
    gradient_norm: float
    """Largest absolute gradient of the mean log-likelihood in log-parameters at the optimum."""
    method: str
    """The optimiser: ``"L-BFGS-B"``, or ``"BFGS"`` after a warm start on coarsened data (see
    :doc:`/explanation/models-numerics`)."""


_LOG_BOUND = 30.0  # log-parameters stay in [-30, 30]: parameters in [1e-13, 1e13]


def _quasi_newton(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    x0: FloatArray,
    hess0: FloatArray,
    *,
    gtol: float = 1e-9,
    max_iterations: int = 50,
) -> Any:
    """BFGS from ``x0`` with the initial Hessian ``hess0`` (a warm start's), Armijo backtracking.

    Started from the optimum of a coarse approximation of the data with that approximation's
    Hessian, it converges in a few steps. Returns a ``scipy.optimize.OptimizeResult`` on
    convergence (largest gradient below ``gtol``, or no further decrease at rounding level with a
    gradient below 1e-6), and ``None`` otherwise, so that the caller falls back to L-BFGS-B.
    """
    from scipy.optimize import OptimizeResult

    x = np.asarray(x0, dtype=np.float64).copy()
    f, g = objective(x)
    nfev = 1
    if not (math.isfinite(f) and np.all(np.isfinite(g))):
        return None
    b = np.asarray(hess0, dtype=np.float64).copy()
    message = "maximum iterations"
    done = False
    for it in range(max_iterations + 1):
        if float(np.max(np.abs(g))) <= gtol:
            message, done = "gradient below tolerance", True
            break
        if it == max_iterations:
            break
        try:
            p = -np.linalg.solve(b, g)
        except np.linalg.LinAlgError:
            return None
        slope = float(g @ p)
        if not (slope < 0 and np.all(np.isfinite(p))):
            return None
        biggest = float(np.max(np.abs(p)))
        if biggest > 2.0:  # at most a factor e^2 on any parameter per step
            p *= 2.0 / biggest
            slope *= 2.0 / biggest
        t = 1.0
        g_max = float(np.max(np.abs(g)))
        for _ in range(30):
            xn = np.clip(x + t * p, -_LOG_BOUND, _LOG_BOUND)
            fn, gn = objective(xn)
            nfev += 1
            if not math.isfinite(fn):
                t *= 0.5
                continue
            if fn <= f + 1e-4 * t * slope:
                break
            # near the optimum the decrease is below the rounding noise of f: accept a step
            # that keeps f within that noise and shrinks the gradient (approximate Wolfe)
            if fn <= f + 1e-12 * max(abs(f), 1.0) and float(np.max(np.abs(gn))) < g_max:
                break
            t *= 0.5
        else:
            if float(np.max(np.abs(g))) <= 1e-6:  # no decrease left at rounding level
                message, done = "no further decrease (rounding level)", True
                break
            return None
        s_step, y = xn - x, gn - g
        sy = float(s_step @ y)
        if sy > 0:
            bs = b @ s_step
            b = b - np.outer(bs, bs) / float(s_step @ bs) + np.outer(y, y) / sy
        small = (f - fn) <= 1e-15 * max(abs(f), 1.0)
        x, f, g = xn, fn, gn
        if small and float(np.max(np.abs(g))) <= 1e-6:
            message, done = "relative reduction of f at rounding level", True
            break
    if not done:
        return None
    return OptimizeResult(
        x=x, fun=f, jac=g, nit=it, nfev=nfev, success=True, message=f"warm-started BFGS: {message}"
    )


class BTYDModel:
    """Base of the BTYD estimators: maximum likelihood on log-parameters, fitted attributes.

    Subclasses set ``param_names``, ``required_columns`` and implement ``_prepare`` (read,
    validate and compress a frame), ``_loglik`` (per-row log-likelihood and its gradient in the
    natural parameters) and ``_initial`` (starting values).
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    """Parameter names, as in the papers."""
    required_columns: ClassVar[tuple[str, ...]] = ()
    """Columns ``fit`` needs."""
    compress_keys: ClassVar[tuple[str, ...]] = ()
    """Columns whose distinct combinations are compressed into weights."""

    def __init__(
        self,
        *,
        time_unit: str | None = None,
        penalizer_coef: float = 0.0,
        initial_params: Mapping[str, float] | None = None,
        max_iterations: int = 2000,
    ) -> None:
        """Store the options; nothing is computed until :meth:`fit`.

        :param time_unit: the time unit of the data's ``recency`` and ``T`` (``"D"``, ``"W"``,
            ...; see :data:`TIME_UNIT_NAMES`), recorded so that horizons and discount rates of
            predictions and CLV can be checked against it. ``None`` leaves it unstated.
        :param penalizer_coef: L2 penalty on the parameters (``coef * sum(params**2)`` added to
            the mean negative log-likelihood), as in lifetimes; ``0`` for plain maximum
            likelihood. A small value (1e-3) helps data that barely identify a parameter.
        :param initial_params: starting values by parameter name (default: data-based guesses).
        :param max_iterations: iteration limit of the optimiser.
        """
        self.time_unit = time_unit
        self.penalizer_coef = penalizer_coef
        self.initial_params = initial_params
        self.max_iterations = max_iterations

    # ---------------------------------------------------------------- subclass interface

    def _prepare(self, frame: FrameLike) -> Arrays:  # pragma: no cover - abstract
        raise NotImplementedError

    def _loglik(
        self, params: FloatArray, data: Arrays, gradient: bool
    ) -> tuple[FloatArray, FloatArray | None]:  # pragma: no cover - abstract
        """Per-row log-likelihood and, if asked, its gradient (rows x params, natural scale)."""
        raise NotImplementedError

    def _initial(self, data: Arrays) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _coarse(self, data: Arrays) -> Arrays | None:
        """A much smaller approximation of the prepared ``data`` (e.g. durations rounded to a
        coarse grid and compressed again) whose optimum is a warm start for the full fit, or
        ``None`` when the data are small enough to fit directly (the default)."""
        return None

    def _warm_start(self, x0: FloatArray, coarse: Arrays) -> tuple[FloatArray, FloatArray] | None:
        """Fit ``coarse`` from ``x0``: its optimum and the Hessian of its mean objective there
        (forward differences), or ``None`` if that fit fails in any way."""
        from scipy import optimize

        n_c = float(coarse["weights"].sum())
        res = optimize.minimize(
            self._objective,
            x0,
            args=(coarse, n_c),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(x0),
            options={"maxiter": self.max_iterations, "ftol": 1e-12, "gtol": 1e-7, "maxcor": 20},
        )
        x = np.asarray(res.x, dtype=np.float64)
        g = np.asarray(res.jac, dtype=np.float64)
        if not (math.isfinite(float(res.fun)) and np.all(np.abs(x) < _LOG_BOUND - 1)):
            return None
        k = x.size
        hess = np.empty((k, k))
        for i in range(k):
            up = x.copy()
            up[i] += 1e-5
            _, gu = self._objective(up, coarse, n_c)
            hess[:, i] = (gu - g) / 1e-5
        hess = (hess + hess.T) / 2
        if not (np.all(np.isfinite(hess)) and float(np.linalg.eigvalsh(hess).min()) > 0):
            return None
        return x, hess

    # ---------------------------------------------------------------- fitting

    @property
    def _owner(self) -> str:
        return type(self).__name__

    def _total(self, params: FloatArray, data: Arrays) -> tuple[float, FloatArray]:
        """Weighted total log-likelihood and its gradient (natural parameters).

        Subclasses may override this with a faster form (terms that depend on one column only
        summed per distinct value); the default sums :meth:`_loglik`.
        """
        ll, grad = self._loglik(params, data, True)
        assert grad is not None
        w = data["weights"]
        return float(w @ ll), np.asarray(w @ grad, dtype=np.float64)

    def _objective(self, logp: FloatArray, data: Arrays, scale: float) -> tuple[float, FloatArray]:
        params = np.exp(logp)
        with np.errstate(all="ignore"):
            total, grad = self._total(params, data)
        value = -total / scale
        g = -grad / scale * params  # chain rule to log-parameters
        if self.penalizer_coef:
            value += self.penalizer_coef * float(params @ params)
            g = g + self.penalizer_coef * 2.0 * params * params
        if not math.isfinite(value) or not np.all(np.isfinite(g)):
            return math.inf, np.zeros_like(logp)
        return value, g

    def fit(self, frame: FrameLike) -> Self:
        """Estimate the parameters by maximum likelihood from ``frame``; return ``self``.

        :param frame: the model's input columns (see the class documentation), polars eager or
            lazy (pandas and pyarrow accepted); an optional ``weights`` column counts each row
            that many times.
        :raises ModelInputError: the columns are missing or break the model's assumptions.
        :raises ConvergenceError: the optimiser failed; the message says why and what to try.
        """
        data = self._prepare(frame)
        n_obs = float(data["weights"].sum())
        if n_obs <= 0:
            raise ModelInputError(f"{self._owner}.fit: the frame has no rows (or zero weights)")
        if self.initial_params is not None:
            unknown = set(self.initial_params) - set(self.param_names)
            if unknown:
                raise ModelInputError(
                    f"{self._owner}: initial_params has unknown name(s) {sorted(unknown)}; "
                    f"known: {list(self.param_names)}"
                )
            start = self._initial(data)
            for i, name in enumerate(self.param_names):
                if name in self.initial_params:
                    start[i] = float(self.initial_params[name])
        else:
            start = self._initial(data)
        if np.any(start <= 0) or not np.all(np.isfinite(start)):
            raise ModelInputError(
                f"{self._owner}: starting values {dict(zip(self.param_names, start, strict=True))}"
                " must be positive and finite"
            )
        x0 = np.log(start)
        from scipy import optimize  # imported here: scipy.optimize is slow to import

        first: list[float] = []

        def objective(logp: FloatArray) -> tuple[float, FloatArray]:
            value, grad = self._objective(logp, data, n_obs)
            if not first:
                first.append(value)
            return value, grad

        res: optimize.OptimizeResult | None = None
        coarse = self._coarse(data) if self.initial_params is None else None
        if coarse is not None:
            warm = self._warm_start(x0, coarse)
            if warm is not None:
                res = _quasi_newton(objective, warm[0], warm[1])
        if res is None:
            first.clear()
            res = optimize.minimize(
                objective,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(x0),
                options={
                    "maxiter": self.max_iterations,
                    "ftol": 1e-13,
                    "gtol": 1e-9,
                    "maxcor": 20,
                },
            )
            if first and not math.isfinite(first[0]):
                raise ConvergenceError(
                    f"{self._owner}.fit: the log-likelihood is not finite at the starting values "
                    f"{dict(zip(self.param_names, start.round(6), strict=True))}; pass "
                    "initial_params=... closer to plausible values, or check the data's time unit"
                )
        x = np.asarray(res.x, dtype=np.float64)
        fx, gx = float(res.fun), np.asarray(res.jac, dtype=np.float64)
        gnorm = float(np.max(np.abs(gx))) if math.isfinite(fx) else math.inf
        params = np.exp(x)
        named = dict(zip(self.param_names, params.round(6).tolist(), strict=True))
        if not math.isfinite(fx):
            raise ConvergenceError(
                f"{self._owner}.fit: the log-likelihood became non-finite at {named}; check the "
                "data (units, outliers) or pass initial_params=..."
            )
        at_bound = [n for n, v in zip(self.param_names, x, strict=True) if abs(v) > _LOG_BOUND - 1]
        if at_bound:
            raise ConvergenceError(
                f"{self._owner}.fit: parameter(s) {at_bound} ran to the edge of their range "
                f"({named}): the data do not identify them. Try penalizer_coef=0.001, more data, "
                "or a simpler model (e.g. BetaGeo instead of ParetoNBD)"
            )
        if gnorm > 1e-4:
            raise ConvergenceError(
                f"{self._owner}.fit: the optimiser stopped ({res.message}) after {res.nit} "
                f"iterations with gradient {gnorm:.2e} at {named}; try initial_params=..., "
                "max_iterations=..., or penalizer_coef=0.001"
            )
        self._set_fit(params, data, n_obs, res, gnorm)
        return self

    def _set_fit(
        self,
        params: FloatArray,
        data: Arrays,
        n_obs: float,
        res: optimize.OptimizeResult,
        gnorm: float,
    ) -> None:
        # Hessian of the total log-likelihood in log-parameters, by forward differences of the
        # analytic gradient from the optimum (whose gradient the optimiser returned)
        logp = np.log(params)
        k = len(logp)
        pen_grad = self.penalizer_coef * 2.0 * params * params
        base = (np.asarray(res.jac, dtype=np.float64) - pen_grad) * n_obs + pen_grad
        hess = np.empty((k, k))
        h = 1e-5
        for i in range(k):
            up = logp.copy()
            up[i] += h
            _, gu = self._objective(up, data, 1.0)
            hess[:, i] = (gu - base) / h
        hess = (hess + hess.T) / 2  # of the negative log-likelihood (+ penalty)
        ok = bool(np.all(np.isfinite(hess))) and float(np.linalg.eigvalsh(hess).min()) > 0
        cov_log = np.linalg.inv(hess) if ok else np.full((k, k), np.nan)
        if not ok:
            named = dict(zip(self.param_names, params.round(6).tolist(), strict=True))
            raise ConvergenceError(
                f"{self._owner}.fit: the log-likelihood has no proper maximum at {named} (its "
                "Hessian is singular or not negative definite): the data do not identify all "
                "parameters (e.g. no repeat purchases, or no variation). Use more data, "
                "penalizer_coef=0.001, or a simpler model"
            )
        # the optimiser's value at the optimum is the mean negative log-likelihood (+ penalty)
        total = -(float(res.fun) - self.penalizer_coef * float(params @ params)) * n_obs
        self._params = dict(zip(self.param_names, (float(v) for v in params), strict=True))
        self._log_likelihood = float(total)
        self._n_obs = n_obs
        self._convergence = Convergence(
            success=bool(res.success) or gnorm <= 1e-4,
            message=str(res.message),
            iterations=int(res.nit),
            function_evaluations=int(res.nfev),
            gradient_norm=gnorm,
            method="BFGS" if str(res.message).startswith("warm-started") else "L-BFGS-B",
        )
        self._cov_log = cov_log
        self._covariance = cov_log * np.outer(params, params)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_params(cls, **params: float) -> Self:
        """A model with known parameters (e.g. published estimates), ready to predict.

        Only :attr:`params_` is set; the fit statistics (log-likelihood, standard errors) raise
        :class:`~loyaltykit.errors.NotFittedError`.

        :raises ModelInputError: a parameter is missing, unknown, or not positive.
        """
        names = set(cls.param_names)
        if set(params) != names:
            raise ModelInputError(
                f"{cls.__name__}.from_params: expected exactly {list(cls.param_names)}, got "
                f"{sorted(params)}"
            )
        bad = {k: v for k, v in params.items() if not (math.isfinite(v) and v > 0)}
        if bad:
            raise ModelInputError(
                f"{cls.__name__}.from_params: parameters must be positive and finite, got {bad}"
            )
        model = cls()
        model._params = {n: float(params[n]) for n in cls.param_names}
        return model

    # ---------------------------------------------------------------- fitted attributes

    def _fitted(self, attr: str, fit_only: bool = False) -> Any:
        value = self.__dict__.get(attr)
        if value is None:
            if fit_only and "_params" in self.__dict__:
                raise NotFittedError(
                    f"{self._owner} was built with from_params(); {attr.lstrip('_')}_ exists "
                    "only after fit(frame)"
                )
            raise NotFittedError(
                f"{self._owner} is not fitted yet; call fit(frame) or from_params(...) first"
            )
        return value

    @property
    def params_(self) -> dict[str, float]:
        """Fitted (or given) parameters by their names in the papers."""
        return dict(self._fitted("_params"))

    @property
    def log_likelihood_(self) -> float:
        """Log-likelihood of the fitted data at :attr:`params_` (weights counted)."""
        return float(self._fitted("_log_likelihood", True))

    @property
    def n_observations_(self) -> float:
        """Number of observations (rows times weights) the model was fitted on."""
        return float(self._fitted("_n_obs", True))

    @property
    def convergence_(self) -> Convergence:
        """How the optimiser ended (:class:`Convergence`)."""
        value: Convergence = self._fitted("_convergence", True)
        return value

    @property
    def covariance_(self) -> FloatArray:
        """Asymptotic covariance matrix of the parameters (inverse Hessian, delta method)."""
        value: FloatArray = self._fitted("_covariance", True)
        return value.copy()

    @property
    def standard_errors_(self) -> dict[str, float]:
        """Standard errors of the parameters (NaN when the Hessian is singular)."""
        cov = self.covariance_
        return {n: float(math.sqrt(cov[i, i])) for i, n in enumerate(self.param_names)}

    def confidence_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald confidence intervals at ``level``, computed on the log scale (always positive)."""
        cov_log: FloatArray = self._fitted("_cov_log", True)
        q = float(ndtri(0.5 + level / 2))
        out = {}
        for i, n in enumerate(self.param_names):
            se = math.sqrt(cov_log[i, i])
            est = self._params[n]
            out[n] = (est * math.exp(-q * se), est * math.exp(q * se))
        return out

    @property
    def confidence_intervals_(self) -> dict[str, tuple[float, float]]:
        """95% confidence intervals of the parameters (see :meth:`confidence_intervals`)."""
        return self.confidence_intervals(0.95)

    @property
    def aic_(self) -> float:
        """Akaike information criterion, ``2k - 2 log L``."""
        return 2 * len(self.param_names) - 2 * self.log_likelihood_

    @property
    def bic_(self) -> float:
        """Bayesian information criterion, ``k log n - 2 log L``."""
        return len(self.param_names) * math.log(self.n_observations_) - 2 * self.log_likelihood_

    @property
    def summary_(self) -> pl.DataFrame:
        """Parameters with standard errors and 95% confidence intervals, one row each."""
        ci = self.confidence_intervals_
        se = self.standard_errors_
        return pl.DataFrame(
            {
                "parameter": list(self.param_names),
                "estimate": [self._params[n] for n in self.param_names],
                "std_error": [se[n] for n in self.param_names],
                "lower_95": [ci[n][0] for n in self.param_names],
                "upper_95": [ci[n][1] for n in self.param_names],
            }
        )

    def _p(self) -> FloatArray:
        params = self.params_
        return np.array([params[n] for n in self.param_names], dtype=np.float64)

    def individual_log_likelihood(self, frame: FrameLike) -> pl.DataFrame | pl.LazyFrame:
        """``frame`` with a ``log_likelihood`` column: each row's log-likelihood at the parameters.

        Weights are not applied (a row's value is for one customer with that row's data).
        """
        p = self._p()

        def compute(a: Arrays) -> dict[str, FloatArray]:
            data = self._prepare_rows(a)
            ll, _ = self._loglik(p, data, False)
            return {"log_likelihood": ll}

        return with_columns(frame, self._owner, self._row_columns(), compute, ["log_likelihood"])

    def _row_columns(self) -> tuple[str, ...]:
        return self.required_columns

    def _prepare_rows(self, arrays: Arrays) -> Arrays:
        """Validate arrays read from a frame for prediction (no compression)."""
        return arrays

    def __repr__(self) -> str:
        params = self.__dict__.get("_params")
        if params is None:
            return f"{type(self).__name__}(unfitted)"
        inner = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"


def purchase_counts(owner: str, n: int | Sequence[int] | FloatArray) -> FloatArray:
    """``n`` as a 1-D float array of distinct whole numbers >= 0 (for probabilities of counts).

    :raises ModelInputError: a value is negative, not whole, or repeated.
    """
    ns = np.atleast_1d(np.asarray(n, dtype=np.float64))
    if ns.ndim != 1 or ns.size == 0:
        raise ModelInputError(f"{owner}: n={n!r} must be one or more whole numbers >= 0")
    if np.any(~np.isfinite(ns)) or np.any(ns < 0) or np.any(ns != np.floor(ns)):
        raise ModelInputError(f"{owner}: n={n!r} must hold whole numbers >= 0")
    if np.unique(ns).size != ns.size:
        raise ModelInputError(f"{owner}: n={n!r} repeats a count; give each count once")
    return ns


def conditional_pmf_columns(
    model: BTYDModel,
    n: int | Sequence[int] | FloatArray,
    t: float,
    frame: FrameLike,
    pmf: Callable[[FloatArray, float, FloatArray, FloatArray, FloatArray], FloatArray],
) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` with one ``probability_{n}_purchases`` column per count in ``n``, from ``pmf``
    (``(ns, t, frequency, recency, T) -> rows x len(ns)``)."""
    owner = f"{model._owner}.conditional_probability_of_purchases"
    model._p()
    ns = purchase_counts(owner, n)
    if not (math.isfinite(t) and t >= 0):
        raise ModelInputError(
            f"{owner}: t={t!r} must be a finite duration >= 0 in the data's time unit"
        )
    names = [f"probability_{int(v)}_purchases" for v in ns]

    def compute(d: Arrays) -> dict[str, FloatArray]:
        d = model._prepare_rows(d)
        values = pmf(ns, float(t), d["frequency"], d["recency"], d["T"])
        return {name: values[:, j] for j, name in enumerate(names)}

    return with_columns(frame, model._owner, ("frequency", "recency", "T"), compute, names)


def read_rft(frame: FrameLike, owner: str, *, with_weights: bool = True) -> Arrays:
    """Read and check ``frequency``, ``recency``, ``T`` (and optional ``weights``).

    Rules: frequency a non-negative whole number, ``0 <= recency <= T``, recency 0
    when frequency is 0, weights non-negative.
    """
    optional = ("weights",) if with_weights else ()
    names = ("frequency", "recency", "T")
    if isinstance(frame, dict) and all(isinstance(frame.get(k), np.ndarray) for k in names):
        # arrays already read (and checked finite) by read_columns
        a = {k: np.asarray(frame[k], dtype=np.float64) for k in ("frequency", "recency", "T")}
        a.update({k: np.asarray(frame[k], dtype=np.float64) for k in optional if k in frame})
    else:
        a = read_columns(frame, owner, ("frequency", "recency", "T"), optional)
    x, tx, T = a["frequency"], a["recency"], a["T"]
    check_rule(
        owner,
        a,
        "frequency",
        (x < 0) | (x != np.floor(x)),
        "frequency counts repeat purchase periods: a whole number >= 0",
    )
    check_rule(owner, a, "recency", tx < 0, "recency must be >= 0")
    check_rule(
        owner,
        a,
        "T",
        tx * (1 - 1e-12) - 1e-12 > T,
        "T (first purchase to end of observation) must be >= recency; are the two in the same "
        "time unit?",
    )
    check_rule(
        owner,
        a,
        "recency",
        (x == 0) & (tx != 0),
        "recency must be 0 when frequency is 0 (no repeat purchase)",
    )
    a["recency"] = np.minimum(tx, T)
    if "weights" in a:
        check_rule(owner, a, "weights", a["weights"] < 0, "weights must be >= 0")
    return a

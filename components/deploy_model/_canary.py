"""A canary judged by live traffic (target kserve): hold it for a soak window, then compare what
the candidate served with what the stable model served in the same window, from the
prediction logs.

The logs tell the two apart by the registered version each record carries: the local model
server writes its own; on a cluster KServe's inference logger copies the predictor pod's
version annotation into every event (``logger.metadataAnnotations``, set by
``kserve.render``) and the prediction-log sink writes it into the record. Requests the
smoke test sent are not part of the window: it opens when the smoke test has passed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from components.verdict import FAIL, PASS, WARN

logger = logging.getLogger(__name__)

LIMITS = {
    # the share of failed requests may grow by at most this much (absolute)
    "max_error_rate_increase": 0.01,
    # the candidate's p95 latency over the stable model's
    "max_latency_p95_ratio": 1.5,
    # PSI of the candidate's predictions against the stable model's (0.2: a marked shift)
    "max_prediction_psi": 0.2,
    # where labels exist: the primary metric's drop (absolute; RMSE relative), as the monitor's
    "max_metric_drop": 0.02,
}
MIN_ROWS_TO_COMPARE = 20
"""Fewer answered rows on either side make a latency or distribution comparison noise."""


@dataclass
class Soak:
    """What deploy_model's canary_* parameters ask for; ``enabled`` when there is anything to
    wait for and logs to judge by."""

    log_uri: str = ""
    seconds: float = 0.0
    min_requests: int = 0
    limits: dict = field(default_factory=dict)
    labels_uri: str = ""

    def __post_init__(self):
        unknown = sorted(set(self.limits) - set(LIMITS))
        if unknown:
            raise ValueError(f"canary_limits {unknown} are not among {sorted(LIMITS)}")
        if any(not isinstance(v, (int, float)) or v < 0 for v in self.limits.values()):
            raise ValueError(f"canary_limits must be non-negative numbers, got {self.limits}")
        if self.seconds < 0 or self.min_requests < 0:
            raise ValueError("canary_soak_seconds and canary_min_requests must be >= 0")
        if (self.seconds or self.min_requests) and not self.log_uri:
            raise ValueError(
                "canary_soak_seconds/canary_min_requests need prediction_log_uri: the canary is "
                "judged from the prediction logs"
            )
        self.limits = {**LIMITS, **self.limits}

    @property
    def enabled(self) -> bool:
        return bool(self.log_uri) and bool(self.seconds or self.min_requests)


class Judge:
    """``judge(stable_version) -> bool``: holds the canary, then adds the canary-* checks.

    ``max_seconds`` is the longest it may hold (a rollout marker older than that plus the
    ready timeout belongs to a dead rollout)."""

    def __init__(
        self,
        soak: Soak,
        *,
        model: str,
        candidate: str,
        patience: float,
        poll: float,
        check,
        blessing: dict | None = None,
    ):
        self.soak, self.model, self.candidate = soak, model, candidate
        self.patience, self.poll, self.check = patience, max(poll, 0.05), check
        self.blessing = blessing or {}
        self.max_seconds = soak.seconds + patience

    def __call__(self, stable_version: str) -> bool:
        started = time.time()
        since = datetime.fromtimestamp(started, timezone.utc)
        while True:
            requests = _requests(self._read(since))
            elapsed = time.time() - started
            served = int((requests["version"] == self.candidate).sum())
            if elapsed >= self.soak.seconds and served >= self.soak.min_requests:
                break
            if elapsed >= self.max_seconds:
                return self._too_little(requests, served, elapsed)
            time.sleep(self.poll)
        logger.info(
            "canary soak over after %.1f s: %d requests to version %s", elapsed, served, self.candidate
        )
        return self._compare(self._read(since), stable_version, elapsed)

    def _read(self, since: datetime):
        import pandas as pd

        from components import prediction_log

        frame = prediction_log.read(self.soak.log_uri, self.model, since)
        frame["version"] = frame["version"].fillna("").astype(str)
        frame["status"] = pd.to_numeric(frame["status"], errors="coerce").fillna(0).astype(int)
        frame["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce")
        return frame

    def _too_little(self, requests, served: int, elapsed: float) -> bool:
        reason = (
            f"only {served} of the {self.soak.min_requests} requests needed reached version "
            f"{self.candidate} in {elapsed:.0f} s (canary_soak_seconds={self.soak.seconds:g}, then up to "
            f"ready_timeout_seconds more): too little traffic to judge the canary, so it is not promoted. "
            "Lower canary_min_requests for a quiet service"
        )
        if served == 0 and len(requests) and (requests["version"] == "").all():
            reason += (
                f"; the {len(requests)} logged requests carry no model version: the InferenceService's "
                "logger needs metadataAnnotations (deploy_model sets them with prediction_logger_url)"
            )
        self.check("canary-traffic", FAIL, reason, value=served, threshold=self.soak.min_requests)
        return False

    def _compare(self, rows, stable_version: str, elapsed: float) -> bool:
        limits = self.soak.limits
        canary = rows[rows["version"] == self.candidate]
        stable = (
            rows[rows["version"] == stable_version]
            if stable_version
            else rows[rows["version"] != self.candidate]
        )
        c_req, s_req = _requests(canary), _requests(stable)
        stable_name = f"version {stable_version}" if stable_version else "the stable model"
        self.check(
            "canary-traffic",
            PASS,
            f"{len(c_req)} requests to version {self.candidate} and {len(s_req)} to {stable_name} "
            f"in a {elapsed:.0f} s soak",
            value=len(c_req),
            threshold=self.soak.min_requests,
        )
        ok = True

        c_err, s_err = _error_rate(c_req), _error_rate(s_req) if len(s_req) else 0.0
        ok &= self._limit(
            "canary-error-rate",
            c_err - s_err,
            limits["max_error_rate_increase"],
            f"{c_err:.2%} of the candidate's requests failed, {s_err:.2%} of {stable_name}'s",
        )

        c_ok, s_ok = canary[canary["status"] == 200], stable[stable["status"] == 200]
        if min(len(_requests(c_ok)), len(_requests(s_ok))) < MIN_ROWS_TO_COMPARE:
            self.check(
                "canary-latency",
                WARN,
                f"fewer than {MIN_ROWS_TO_COMPARE} answered requests on a side: latency not compared",
            )
        else:
            c_p95 = float(np.percentile(_requests(c_ok)["latency_ms"].dropna(), 95))
            s_p95 = float(np.percentile(_requests(s_ok)["latency_ms"].dropna(), 95))
            ok &= self._limit(
                "canary-latency",
                c_p95 / s_p95 if s_p95 > 0 else math.inf * (c_p95 > 0),
                limits["max_latency_p95_ratio"],
                f"p95 {c_p95:.1f} ms for the candidate, {s_p95:.1f} ms for {stable_name}",
            )

        c_pred, s_pred = _predictions(c_ok), _predictions(s_ok)
        if min(len(c_pred), len(s_pred)) < MIN_ROWS_TO_COMPARE:
            self.check(
                "canary-predictions",
                WARN,
                f"fewer than {MIN_ROWS_TO_COMPARE} predicted rows on a side: "
                "prediction distributions not compared",
            )
        else:
            ok &= self._limit(
                "canary-predictions",
                _psi(s_pred, c_pred),
                limits["max_prediction_psi"],
                f"PSI of the candidate's {len(c_pred)} predictions against {stable_name}'s {len(s_pred)}",
            )

        if self.soak.labels_uri:
            ok &= self._performance(c_ok, s_ok, stable_name)
        return bool(ok)

    def _limit(self, name: str, value: float, limit: float, what: str) -> bool:
        passed = value <= limit
        self.check(
            name,
            PASS if passed else FAIL,
            f"{what}: {value:.4g} {'<=' if passed else '>'} {limit:g}",
            value=round(float(value), 6),
            threshold=limit,
        )
        return passed

    def _performance(self, canary, stable, stable_name: str) -> bool:
        """The task's primary metric on the labelled rows of each side (labels joined by
        request id, and ``row`` for multi-row requests)."""
        from components import measures

        task, label = self.blessing.get("task"), self.blessing.get("label")
        if not task or not label:
            self.check(
                "canary-performance",
                WARN,
                "labels were given but no blessing names the task and label: performance not compared",
            )
            return True
        from components import model_io, prediction_log

        labels = model_io.read_frame(self.soak.labels_uri)
        metric = measures.LIVE_METRICS[task][0]
        values = {}
        for side, rows in (("candidate", canary), ("stable", stable)):
            rows = rows[rows["prediction"].notna()]  # a failed request has no prediction to judge
            try:
                labelled, mask = prediction_log.join_labels(rows, labels, label)
                y = measures.encode_labels(labelled, task, self.blessing.get("classes"))
            except ValueError as exc:
                raise ValueError(f"canary_labels_uri {self.soak.labels_uri!r}: {exc}") from exc
            if mask.sum() < MIN_ROWS_TO_COMPARE:
                self.check(
                    "canary-performance",
                    WARN,
                    f"{mask.sum()} labelled rows for the {side}: "
                    f"fewer than {MIN_ROWS_TO_COMPARE}, performance not compared",
                )
                return True
            values[side] = measures.live(task, y, _predictions(rows[mask]))[metric]
        drop = measures.drop(metric, values["stable"], values["candidate"])
        return self._limit(
            "canary-performance",
            drop,
            self.soak.limits["max_metric_drop"],
            f"{metric} {values['candidate']:.4f} for the candidate, {values['stable']:.4f} "
            f"for {stable_name}; drop",
        )


def _requests(rows):
    """One row per request (a multi-row request counts once for errors and latency)."""
    return rows.drop_duplicates("request_id")


def _error_rate(requests) -> float:
    return float((requests["status"] != 200).mean()) if len(requests) else 0.0


def _predictions(rows) -> np.ndarray:
    values = [p for p in rows["prediction"] if p is not None]
    return np.asarray(values, dtype=np.float64)


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    from components import measures

    if reference.ndim == 2:  # class probabilities: compare the predicted classes' shares
        n = reference.shape[1]
        return measures.psi_classes(reference.argmax(axis=1), current.argmax(axis=1), n)
    return measures.psi(reference, current)[0]

"""`curate ab-report`: per variant latency, errors and ratings from the router's request log, with a
significance test and the sample size still needed for the difference seen."""

from __future__ import annotations

import math
from pathlib import Path

from curation.errors import UsageError


def _needed_per_group(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Samples per variant for a two-sided two-proportion test to detect ``p1`` vs ``p2``."""
    from scipy.stats import norm

    if p1 == p2:
        return None
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return math.ceil(z**2 * (p1 * (1 - p1) + p2 * (1 - p2)) / (p1 - p2) ** 2)


def _needed_means(sd1: float, sd2: float, d: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    from scipy.stats import norm

    if d == 0 or math.isnan(d):
        return None
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return math.ceil(z**2 * (sd1**2 + sd2**2) / d**2)


def ab_report(log_dir: Path, alias: str | None = None) -> dict:
    """Per alias and variant: requests, error rate, latency p50 / p95, ratings and thumbs; per alias with two or
    more variants, the first two compared: Mann-Whitney U on ratings, a two-proportion z-test on thumbs up, and
    the samples per variant needed (80% power, 5% level) for the difference seen."""
    import duckdb
    import numpy as np
    from scipy.stats import mannwhitneyu, norm

    files = sorted(Path(log_dir).glob("requests-*.parquet"))
    if not files:
        raise UsageError(f"{log_dir}: no request log files (requests-*.parquet); is this the router's log_dir?")
    con = duckdb.connect()
    con.read_parquet([str(f) for f in files], union_by_name=True).create_view("log")
    where = "WHERE alias = ?" if alias else ""
    params = [alias] if alias else []
    # a request's row, with the latest feedback given for it (feedback rows repeat the request)
    rows = con.execute(f"""
        WITH req AS (SELECT * FROM log WHERE kind = 'request'),
             fb AS (SELECT id, arg_max(rating, time) AS rating, arg_max(thumbs, time) AS thumbs FROM log
                    WHERE kind IN ('request', 'feedback') AND (rating IS NOT NULL OR thumbs IS NOT NULL) GROUP BY id)
        SELECT req.alias, req.variant, req.status, req.latency_seconds, fb.rating, fb.thumbs
        FROM req LEFT JOIN fb USING (id) {where}""", params).fetchall()
    out: dict = {"files": len(files), "aliases": {}}
    by: dict[tuple[str, str], list] = {}
    for a, v, status, lat, rating, thumbs in rows:
        by.setdefault((a, v), []).append((status, lat, rating, thumbs))
    for (a, v), items in sorted(by.items()):
        ok = [lat for s, lat, _, _ in items if s == "200" and lat is not None]
        ratings = [r for _, _, r, _ in items if r is not None]
        thumbs = [t for _, _, _, t in items if t]
        out["aliases"].setdefault(a, {"variants": {}})["variants"][v] = {
            "requests": len(items), "errors": sum(s != "200" for s, *_ in items),
            "error_rate": sum(s != "200" for s, *_ in items) / len(items),
            "latency_p50": float(np.percentile(ok, 50)) if ok else None,
            "latency_p95": float(np.percentile(ok, 95)) if ok else None,
            "ratings": len(ratings), "rating_mean": float(np.mean(ratings)) if ratings else None,
            "_ratings": ratings, "thumbs": len(thumbs), "thumbs_up_share": (thumbs.count("up") / len(thumbs)) if thumbs else None,
            "_thumbs": thumbs,
        }
    for a, entry in out["aliases"].items():
        names = list(entry["variants"])
        if len(names) >= 2:
            x, y = entry["variants"][names[0]], entry["variants"][names[1]]
            cmp: dict = {"variants": names[:2]}
            if x["_ratings"] and y["_ratings"]:
                cmp["rating_difference"] = x["rating_mean"] - y["rating_mean"]
                cmp["rating_mann_whitney_p"] = float(mannwhitneyu(x["_ratings"], y["_ratings"]).pvalue)
                cmp["ratings_needed_per_variant"] = _needed_means(float(np.std(x["_ratings"], ddof=1)) if len(x["_ratings"]) > 1 else 1.0,
                                                                  float(np.std(y["_ratings"], ddof=1)) if len(y["_ratings"]) > 1 else 1.0,
                                                                  cmp["rating_difference"])
            if x["_thumbs"] and y["_thumbs"]:
                p1, p2, n1, n2 = x["thumbs_up_share"], y["thumbs_up_share"], x["thumbs"], y["thumbs"]
                pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
                se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
                cmp["thumbs_up_difference"] = p1 - p2
                cmp["thumbs_z_test_p"] = float(2 * (1 - norm.cdf(abs(p1 - p2) / se))) if se > 0 else None
                cmp["thumbs_needed_per_variant"] = _needed_per_group(p1, p2)
            entry["comparison"] = cmp
        for v in entry["variants"].values():
            v.pop("_ratings")
            v.pop("_thumbs")
    return out

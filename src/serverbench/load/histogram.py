"""Latency histograms any load engine records: HdrHistogram settings, encoding, exact merges.

Every engine stores its latencies (in microseconds) as a base64 HdrHistogram with the same
settings, so repeats, client processes and engines merge exactly and percentiles are always
computed from counts, never averaged.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Sequence

from hdrh.codec import HdrCookieException, HdrHistogramSettingsException, HdrLengthException
from hdrh.histogram import HdrHistogram

from serverbench.errors import ResultsError

HDR_LOWEST_US = 1
HDR_HIGHEST_US = 60_000_000
HDR_SIGNIFICANT_DIGITS = 3
_HDR_ERRORS = (
    binascii.Error,
    ValueError,
    TypeError,
    IndexError,
    zlib.error,
    HdrCookieException,
    HdrLengthException,
    HdrHistogramSettingsException,
)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGNIFICANT_DIGITS)


def encoded(hist: HdrHistogram) -> str:
    blob = hist.encode()
    return blob.decode("ascii") if isinstance(blob, bytes) else str(blob)


def decode(blob: str) -> HdrHistogram:
    try:
        return HdrHistogram.decode(blob)
    except _HDR_ERRORS as exc:
        raise ResultsError(
            f"a latency histogram does not decode ({exc or type(exc).__name__}); "
            "the results file is damaged; re-run the benchmark"
        ) from exc


def merge_histograms(blobs: Sequence[str]) -> str | None:
    """The exact sum of several encoded histograms (e.g. repeats); None when given none."""
    if not blobs:
        return None
    merged = decode(blobs[0])
    for blob in blobs[1:]:
        try:
            merged.add(decode(blob))
        except IndexError as exc:
            raise ResultsError(
                f"latency histograms of different ranges cannot be merged ({exc}); "
                "re-run the benchmark with one serverbench version"
            ) from exc
    return encoded(merged)


def percentile_key(percentile: float) -> str:
    """The dict key for a percentile: 50 -> "50", 99.9 -> "99.9"."""
    return format(percentile, "g")


def percentiles_from_hdr(blob: str, percentiles: Sequence[float]) -> dict[str, float]:
    """Percentiles (keys by `percentile_key`) of an encoded histogram; empty when it is empty.
    Values are the highest value equivalent to the bucket: within 0.1 % (3 digits)."""
    hist = decode(blob)
    if hist.get_total_count() == 0:
        return {}
    out: dict[str, float] = {}
    for p in percentiles:
        if not 0 <= p <= 100:
            raise ValueError(f"percentile {p} is outside [0, 100]")
        out[percentile_key(p)] = float(hist.get_value_at_percentile(p))
    return out

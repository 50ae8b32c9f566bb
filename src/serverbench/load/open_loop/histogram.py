"""Latency histograms of the open-loop engine: a cheap recorder for the hot path and the
HdrHistogram blobs it turns into.

Recording into `hdrh.HdrHistogram` costs about 5 us per value in Python, a quarter of the
budget per request at 50,000 req/s. `Recorder` instead counts each value under the lowest
value of its HdrHistogram bucket (lowest 1 us, highest 60,000,000 us, 3 significant digits:
values below 2048 are exact, above that a bucket spans 2**(bit_length - 11)), so memory is
bounded by the number of buckets and the histogram built from it at the end is identical,
bucket for bucket, to recording every raw value. Histogram settings, blobs and their decoding
are the ones every engine shares (`serverbench.load.histogram`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from serverbench.load.histogram import (
    HDR_HIGHEST_US,
    HDR_LOWEST_US,
    decode,
    new_histogram,
)

EXACT_BITS = 11  # 3 significant digits -> 2048 sub-buckets: values < 2**11 are exact


def bucket_floor(value_us: int) -> int:
    """The lowest value of `value_us`'s HdrHistogram bucket (same count index)."""
    shift = value_us.bit_length() - EXACT_BITS
    return value_us >> shift << shift if shift > 0 else value_us


class Recorder:
    """Counts of values (us) keyed by bucket floor; `record` is the hot path."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def record(self, value_us: int) -> None:
        shift = value_us.bit_length() - EXACT_BITS
        if shift > 0:
            value_us = value_us >> shift << shift
        counts = self.counts
        counts[value_us] = counts.get(value_us, 0) + 1

    def histogram(self) -> HdrHistogram:
        hist = new_histogram()
        for value_us, count in self.counts.items():
            # below 1 us is recorded as 1 us; beyond the range as the highest value
            hist.record_value(min(max(value_us, HDR_LOWEST_US), HDR_HIGHEST_US), count)
        return hist


def merge(blobs: Sequence[str]) -> HdrHistogram:
    """The exact sum of encoded histograms (empty histogram when given none)."""
    merged = new_histogram()
    for blob in blobs:
        merged.add(decode(blob))
    return merged


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles:
    """Percentiles of a histogram in us (each the highest value of its bucket, within 0.1 %)."""

    p50_us: float
    p90_us: float
    p99_us: float
    p99_9_us: float
    max_us: float

    @classmethod
    def of(cls, hist: HdrHistogram) -> Percentiles | None:
        """None for an empty histogram: no sample, no percentile."""
        if hist.get_total_count() == 0:
            return None
        at = hist.get_value_at_percentile
        return cls(
            p50_us=float(at(50)),
            p90_us=float(at(90)),
            p99_us=float(at(99)),
            p99_9_us=float(at(99.9)),
            max_us=float(hist.get_max_value()),
        )

"""Load engines: the seam a runner measures through, wrk as its first engine, histograms."""

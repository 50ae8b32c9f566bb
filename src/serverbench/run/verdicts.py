"""Fault verdicts: what a measured job was, from what the load got and how the stack behaved.

A job is `ok`, or failed with one kind (start, service, verify, died, service_died,
unresponsive, no_good_responses, wrong_response, load) and a message a user can act on; the order of the checks is the order in
which one fault explains the next (a dead server explains its missing answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from serverbench.errors import (
    LoadGeneratorError,
    ServerbenchError,
    ServiceError,
    StackStartError,
    VerificationError,
)
from serverbench.plan.profiles import Profile
from serverbench.results.model import Failure, Measurement
from serverbench.run.lifecycle import RunningStack
from serverbench.run.verify import Mismatch

FAILURE_KINDS: dict[type[ServerbenchError], str] = {
    StackStartError: "start",
    ServiceError: "service",
    VerificationError: "verify",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AfterLoad:
    """How the stack stood once the load was over."""

    died: str | None  # why a component exited, if one did
    service_died: str | None = None  # the service (the app's database) that exited, if one did
    app: str = ""
    mismatch: Mismatch | None  # the verifier's finding after the load
    recovery_limit_s: float
    one_request_s: float | None = None  # one request alone, timed after a load with no good one


def failure(running: RunningStack, kind: str, message: str) -> Failure:
    return Failure(
        kind=kind,
        message=message,
        log_tail={process.name: process.tail() for process in running.processes},
    )


def load_failure(stack: str, running: RunningStack, error: LoadGeneratorError) -> Failure:
    """The load engine failed: because the server died under it (named so), or on its own."""
    died = running.exited()
    if died is not None:
        return failure(running, "died", f"{stack} died during the load: {died}")
    return failure(running, "load", str(error))


def verdict(
    stack: str, measurement: Measurement, after: AfterLoad, profile: Profile
) -> tuple[str, str] | None:
    """(kind, message) of the fault the job ended in, or None when it is a good measurement."""
    good = measurement.good_responses
    if after.died is not None and after.service_died is not None:
        return (
            "service_died",
            f"{after.service_died}, which {after.app or 'the app'} needs, died during the "
            f"measurement: {after.died}",
        )
    if after.died is not None:
        return "died", f"{stack} died during the measurement: {after.died}"
    if after.mismatch is not None and not after.mismatch.answered:
        return (
            "unresponsive",
            f"{stack} stopped answering: {good} good responses in the measurement, "
            f"then no answer for {after.recovery_limit_s:g} s after it ({after.mismatch})",
        )
    if good == 0:
        return "no_good_responses", why_no_good_response(measurement, profile) + one_request_note(
            after.one_request_s, profile
        )
    if after.mismatch is not None:
        return "wrong_response", f"answered wrongly after the load: {after.mismatch}"
    return None


def one_request_note(one_request_s: float | None, profile: Profile) -> str:
    """Said when one request alone is what kept every response from counting."""
    if one_request_s is None or one_request_s < min(profile.duration_s, profile.timeout_s) / 2:
        return ""
    return (
        f"; one request alone took {one_request_s:.1f} s after the load, against the "
        f"{profile.duration_s:g} s measurement and the {profile.timeout_s:g} s timeout: a "
        "response counts only if it arrives within both, so give --duration and --timeout "
        "above it"
    )


def why_no_good_response(measurement: Measurement, profile: Profile) -> str:
    """What the load got instead of a good response, in the terms a user can act on."""
    errors = measurement.errors
    if measurement.requests == 0:
        return (
            "no response at all during the measurement (socket errors: connect "
            f"{errors.connect}, read {errors.read}, write {errors.write})"
        )
    if errors.timeout >= measurement.requests:
        return (
            f"all {measurement.requests:,} responses arrived, but each after "
            f"{measurement.engine}'s "
            f"{profile.timeout_s:g} s timeout, so none counts: the server could not keep up "
            "with this load (a longer --timeout measures how late they were)"
        )
    return (
        f"{measurement.requests:,} responses, none good: {errors.status:,} with a "
        f"4xx/5xx status and {errors.timeout:,} after the {profile.timeout_s:g} s timeout"
    )

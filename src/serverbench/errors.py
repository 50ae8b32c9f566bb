"""The one exception family of serverbench.

    ServerbenchError            every error a user can cause or meet; message = "what happened; what to do"
    ├── UsageError              bad command-line input, bad config file, unknown stack/app/profile
    ├── AppError                the app under test does not import, has no such attribute, wrong interface
    ├── StackUnavailable        a server package or system tool is missing
    ├── StackStartError         a stack did not become ready (exited early, never listened)
    │   └── ServiceError        a service the app needs (its database) did not start
    ├── VerificationError       a stack answered, but not with the expected response
    ├── LoadGeneratorError      wrk is missing, failed, or produced no result
    └── ResultsError            a results file cannot be read, written or understood

The CLI catches ServerbenchError only and prints `error: <message>`; anything else is a bug
and keeps its traceback.
"""


class ServerbenchError(Exception):
    """Base class; the message says what happened and what to do."""


class UsageError(ServerbenchError):
    pass


class AppError(ServerbenchError):
    pass


class StackUnavailable(ServerbenchError):
    pass


class StackStartError(ServerbenchError):
    pass


class ServiceError(StackStartError):
    pass


class VerificationError(ServerbenchError):
    pass


class LoadGeneratorError(ServerbenchError):
    pass


class ResultsError(ServerbenchError):
    pass

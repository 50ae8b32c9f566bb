"""One module per subcommand: each registers its parser and handles its arguments.

`COMMANDS` lists them in the order `serverbench --help` shows them.
"""

from serverbench.commands import (
    capacity,
    check,
    compare,
    doctor,
    export,
    init,
    report,
    run,
    serve,
    stacks,
)

COMMANDS = (init, stacks, doctor, check, serve, run, capacity, report, compare, export)

"""One module per subcommand: each registers its parser and handles its arguments.

`COMMANDS` lists them in the order `serverbench --help` shows them.
"""

from serverbench.commands import capacity, check, compare, doctor, report, run, serve, stacks

COMMANDS = (stacks, doctor, check, serve, run, capacity, report, compare)

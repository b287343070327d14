"""``redbeat apply FILE``: make the stored schedule match a file, as ``kubectl apply`` or
Terraform do for theirs.

A deployment keeps its dynamic entries in a file under version control, and applying it adds,
changes and (with ``--prune``) removes entries until the storage holds what the file says.
The parts, each with one job: :mod:`~redbeat.apply.source` reads and checks the file,
:mod:`~redbeat.apply.plan` computes what differs (pure), :mod:`~redbeat.apply.show` prints it,
and :mod:`~redbeat.apply.carry` writes it through ``redbeat.Schedule``.
"""

from redbeat.apply.carry import carry_out, check_entries
from redbeat.apply.plan import Change, FieldChange, Plan, make_plan, same_schedule
from redbeat.apply.show import plan_lines, print_lines, summary
from redbeat.apply.source import EXTENSIONS, ApplyFileError, Wanted, read_entries

__all__ = [
    "EXTENSIONS",
    "ApplyFileError",
    "Change",
    "FieldChange",
    "Plan",
    "Wanted",
    "carry_out",
    "check_entries",
    "make_plan",
    "plan_lines",
    "print_lines",
    "read_entries",
    "same_schedule",
    "summary",
]

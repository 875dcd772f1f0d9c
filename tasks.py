"""Safe, reversible deploys for the Claude PM framework: ``invoke --list`` shows every task.

The task tree lives in ``deploy_tasks.collection`` (so the installed ``claude-pm-deploy``
command has it too); this file hands it to ``invoke`` in a checkout.
"""

from deploy_tasks.collection import ns
from deploy_tasks.parsing import guard_loading_program

__all__ = ["ns"]

# `invoke` imports this file halfway through parsing its command line: from here on, its
# parse errors (unknown flag or task, a missing or bad value) are one error line, exit 2.
guard_loading_program()

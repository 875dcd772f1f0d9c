"""Safe, reversible deploys for the Claude PM framework: ``invoke --list`` shows every task.

The task tree lives in ``deploy_tasks.collection`` (so the installed ``claude-pm-deploy``
command has it too); this file hands it to ``invoke`` in a checkout.
"""

from deploy_tasks.collection import ns

__all__ = ["ns"]

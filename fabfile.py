"""``fab -H a,b TASK``: Fabric runs the same task tree as ``tasks.py``, on the hosts named.

``fabric.json`` beside this file names ``deploy_tasks.remote.fab.HostsExecutor``, which makes
``fab -H a,b deploy`` the same command as ``invoke deploy --hosts a,b`` (README, "Many hosts").
"""

from deploy_tasks.collection import ns

__all__ = ["ns"]

"""The task tree, ``ns``: what ``invoke`` in a checkout (through ``tasks.py``) and the
installed ``claude-pm-deploy`` command both run.

It lives in the package, not in ``tasks.py`` at the repository root, so that an installed
copy has it too. The task bodies live in the other ``deploy_tasks`` modules and the logic in
the ``deploy`` package, imported lazily so listing stays fast.
"""

from invoke import Collection

from deploy_tasks import bench as bench_tasks
from deploy_tasks import (
    dev,
    framework,
    inspect,
    integrity,
    manual,
    release,
    rollback,
    scripts,
    status,
    templates,
    versions,
)
from deploy_tasks import legacy as legacy_tasks
from deploy_tasks import reliability as reliability_tasks

# gc.freeze() runs when the CLI is about to run tasks, in deploy_tasks.executor (named by
# invoke.json, and given to the installed command's Program), not here: importing the
# collection (tests, libraries) must not freeze anything.

ns = Collection()

deploy = Collection("deploy")
deploy.add_task(release.release, name="all", default=True)
deploy.add_task(scripts.deploy_scripts, name="scripts")
deploy.add_task(framework.deploy_framework, name="framework")
deploy.add_task(templates.deploy_templates, name="templates")
ns.add_collection(deploy)

ns.add_collection(Collection("scripts", status=scripts.status))
ns.add_collection(Collection("rollback", scripts=rollback.scripts, release=rollback.release,
                             versions=versions.rollback_versions,
                             templates=templates.rollback_templates,
                             framework=framework.rollback_framework,
                             parents=framework.rollback_parents))
ns.add_collection(Collection("templates", history=templates.history,
                             status=status.templates_status, adopt=templates.adopt))
ns.add_collection(Collection("versions", show=versions.show, bump=versions.bump,
                             bulk=versions.bulk, check=versions.check))
ns.add_collection(Collection("backups", status=inspect.status, verify=integrity.verify,
                             reindex=integrity.reindex, prune=inspect.prune, list=inspect.list_,
                             legacy=legacy_tasks.legacy, migrate=legacy_tasks.migrate,
                             create=manual.create))
history = Collection("history")
history.add_task(inspect.history, name="show", default=True)
history.add_task(inspect.keep, name="keep")
ns.add_collection(history)
ns.add_task(dev.lint)
ns.add_task(dev.test)
ns.add_task(bench_tasks.bench)
ns.add_task(reliability_tasks.reliability)

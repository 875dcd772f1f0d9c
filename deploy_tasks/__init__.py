"""The task layer: the only code that imports Invoke, reads the environment and prints.

Each module defines one collection's tasks; ``tasks.py`` assembles them. The
``deploy`` package is imported inside task bodies so that ``invoke --list``
stays as fast as a one-task tasks.py; only ``deploy.categories`` (a leaf of
plain records, whose flag help the rollback tasks show) and ``deploy.errors``
(for ``guarded``) load with the task list.
"""

"""Safe, reversible deploys for the Claude PM framework's own machinery.

The package knows nothing of Invoke: it takes paths and values, returns frozen
records and raises :class:`deploy.errors.DeployError` subclasses. ``tasks.py``
is the only edge that reads configuration sources, prints and maps errors to
exit codes.
"""

__version__ = "0.1.0"

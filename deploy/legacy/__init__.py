"""Backups the original code left in its old locations, and their opt-in migration.

Nothing migrates by itself (the guide: "no automatic migration"); restore reads
only the central tree and its index. ``backups.migrate`` copies each legacy file
into the central tree under the contract's name and records it in the index as
``imported``: listed, verifiable, restorable with ``--to ID``, but never mistaken for
a run's change by the step-back rollbacks. The originals stay unless asked
(``--remove-originals``), and then only those whose copy re-hashed equal.

- ``names``: the original's backup names, each with its timestamp;
- ``locations``: its folders (v0.7.5 and v0.8.0) and, per file name, which target the
  file backed up (from the config) or why that is not known;
- ``scan``: reading them, and what is never legacy (the toolkit's own files and tree,
  names without a time, a file another user could have written is listed but not offered).
"""

from __future__ import annotations

from deploy.legacy.locations import Location, locations
from deploy.legacy.scan import LegacyBackup, NotScanned, Scan, exposed, find

__all__ = ["LegacyBackup", "Location", "NotScanned", "Scan", "exposed", "find", "locations"]

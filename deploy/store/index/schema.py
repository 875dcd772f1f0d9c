"""The index's schema: runs, their changes, renders and compiled template code.

``CREATE ... IF NOT EXISTS`` throughout, so an index written by an earlier
version gains new tables (``template_code``) on its next read-write open.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- deploy | bump | rollback | migrate | reindex
    actor TEXT NOT NULL,
    command TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    state TEXT NOT NULL,             -- running | done | failed | interrupted | undone
    undoes INTEGER,                  -- for a rollback: the run it undid
    categories TEXT NOT NULL DEFAULT '',
    project TEXT,                    -- the config file of the project that ran it
    git_commit TEXT,                 -- where it came from (issue 14): the commit,
    git_ref TEXT,                    -- the branch or tag,
    ci_url TEXT                      -- and the CI run's page (NULL when unknown)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL REFERENCES runs(id),
    category TEXT NOT NULL,
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,            -- create | update | delete
    backup TEXT,                     -- path relative to the tree; NULL when the target was absent
    old_sha256 TEXT,
    old_size INTEGER,
    old_mode INTEGER,
    new_sha256 TEXT,                 -- NULL when the change deletes the target
    new_size INTEGER,
    new_mode INTEGER,
    created TEXT NOT NULL,
    created_ts REAL NOT NULL,
    state TEXT NOT NULL,             -- planned | backed_up | applied | void | reverted | imported
    undone_by INTEGER,               -- the rollback run that undid this change
    reverts INTEGER,                 -- for a rollback's change: the change it reverted
    pruned INTEGER NOT NULL DEFAULT 0,  -- 1 pruned; 2 being pruned (deploy.store.prune)
    old_uid INTEGER,                 -- the target's owner and group before the change
    old_gid INTEGER
);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE INDEX IF NOT EXISTS runs_project ON runs(project, id);
CREATE INDEX IF NOT EXISTS changes_target ON changes(target, seq);
CREATE INDEX IF NOT EXISTS changes_category ON changes(category, seq);
CREATE INDEX IF NOT EXISTS changes_run ON changes(run, seq);
CREATE INDEX IF NOT EXISTS changes_backup ON changes(backup);
CREATE INDEX IF NOT EXISTS changes_sha ON changes(old_sha256);
CREATE TABLE IF NOT EXISTS renders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    change_seq INTEGER NOT NULL REFERENCES changes(seq),
    category TEXT NOT NULL,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,              -- render number of this key: 1, 2, 3 ...
    template_sha256 TEXT NOT NULL,
    output_sha256 TEXT NOT NULL,
    output BLOB NOT NULL,            -- kept as the base of a later 3-way merge
    context_sha256 TEXT NOT NULL DEFAULT ''  -- the variables but deployed_at: the render cache
);
CREATE INDEX IF NOT EXISTS renders_key ON renders(category, key, n);
CREATE TABLE IF NOT EXISTS template_code (
    path TEXT PRIMARY KEY,           -- the template file
    key TEXT NOT NULL,               -- sha256 of what the code came from (deploy.render.Codes)
    code BLOB NOT NULL               -- marshalled compiled template code
);
"""

# Columns added after the first release: an older index gains them on its next read-write
# open, and reads them as NULL until then.
ADDED_COLUMNS = (("changes", "old_uid", "INTEGER"), ("changes", "old_gid", "INTEGER"),
                 ("runs", "project", "TEXT"), ("runs", "git_commit", "TEXT"),
                 ("runs", "git_ref", "TEXT"), ("runs", "ci_url", "TEXT"),

                 # history.keep: 1 while the run is kept (retention never removes its backups)
                 ("runs", "kept", "INTEGER"),
                 # How the backup is stored (issue 13): ``compressed`` 1 when the file is
                 # ``<backup>.zst`` (old_sha256 and old_size stay the original bytes'),
                 # ``stored_size`` its bytes on disk, ``blob`` the seq of the row whose
                 # write made the file's inode (NULL: its own; a dedupe link shares it).
                 ("changes", "compressed", "INTEGER"), ("changes", "stored_size", "INTEGER"),
                 ("changes", "blob", "INTEGER"))
# Indexes on added columns, made once the columns exist (after ADDED_COLUMNS).
ADDED_INDEXES = (
    # Only the rows that share a file with another (dedupe): status sums them apart.
    "CREATE INDEX IF NOT EXISTS changes_blob ON changes(blob) WHERE blob IS NOT NULL",
)

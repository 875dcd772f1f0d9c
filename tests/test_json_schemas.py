"""Every ``--json`` document matches its JSON Schema in ``schemas/`` (issue 14).

The documents are the real output of the CLI: one scratch project taken through every task
that prints ``--json`` (``tests/json_scenario.py``), each step's stdout validated against the
schema whose ``x-tasks`` names the task. The schemas themselves are checked against the
draft 2020-12 metaschema, their enums against the code's vocabulary, and every task that
takes ``--json`` must have a schema and a step here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from deploy.categories import NAMES
from deploy.states import Action, ChangeState, RunKind, RunState
from deploy_tasks.common import SCHEMA_VERSION
from tests.conftest import REPO
from tests.json_scenario import STEPS, Outcome, Step, play, scenario_project
from tests.test_flags import every_task

SCHEMAS = REPO / "schemas"
ERROR = "error.json"


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def schema_names() -> list[str]:
    return sorted(p.name for p in SCHEMAS.glob("*.json"))


def canonical(task: str) -> str:
    """A task's dotted name in the collection: a collection's name stands for its default
    task (``deploy`` is ``deploy.all``), as on the command line."""
    import tasks

    collection = tasks.ns
    for part in task.split("."):
        if part not in collection.collections:
            return task
        collection = collection.collections[part]
    return f"{task}.{collection.default}" if collection.default else task


def named_tasks(name: str) -> set[str]:
    return {canonical(t) for t in load(name)["x-tasks"]} - {"*"}


def schema_of(task: str) -> str:
    """The schema whose ``x-tasks`` lists ``task``."""
    found = [n for n in schema_names() if canonical(task) in named_tasks(n)]
    assert len(found) == 1, (task, found)
    return found[0]


def schema_for(outcome: Outcome) -> dict[str, Any]:
    """The schema a step's document must match: its task's, or the error document's."""
    return load(schema_of(outcome.step.task) if outcome.step.reports else ERROR)


def json_tasks() -> set[str]:
    """Every task of the collection that prints a JSON document (a bool ``--json``; bench's
    ``--json FILE`` writes a file)."""
    return {name for name, found in every_task()
            if any(a.name == "json_" and a.kind is bool for a in found.get_arguments())}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The scenario played once for the whole module."""
    base = tmp_path_factory.mktemp("json-scenario")
    (base / "home").mkdir()
    return play(scenario_project(base / "proj", base / "home"))


def errors(schema: dict[str, Any], doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(doc)]


# -- the schemas themselves ---------------------------------------------------------------

@pytest.mark.parametrize("name", schema_names())
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    """Each file is a draft 2020-12 schema with $id, title and description, requires
    schema_version at the version the code prints, and names the tasks it describes."""
    schema = load(name)

    Draft202012Validator.check_schema(schema)

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:claude-pm-deploy:schemas:{name}"
    assert schema["title"] and schema["description"] and schema["x-tasks"]
    assert "schema_version" in schema["required"]
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_every_task_with_json_has_a_schema_and_a_step() -> None:
    """A task that takes --json and has no schema (or no step of the scenario) fails here;
    so does a schema naming a task that does not exist."""
    named = {t for n in schema_names() for t in named_tasks(n)}
    played = {canonical(s.task) for s in STEPS}

    assert json_tasks() - named == set()
    assert named - json_tasks() == set()
    assert json_tasks() - played == set()


def enum_at(name: str, *path: str) -> set[str]:
    node: Any = load(name)
    for key in path:
        node = node[key]
    return set(node["enum"])


def test_the_enums_are_the_codes_vocabulary() -> None:
    """Categories, actions, run kinds and states in the schemas are exactly the code's, so
    a value added in the code without its schema fails here."""
    assert enum_at("run.json", "$defs", "change", "properties", "category") == set(NAMES)
    assert enum_at("run.json", "$defs", "change", "properties", "action") == set(Action)
    assert enum_at("history.json", "$defs", "run", "properties", "kind") == set(RunKind)
    assert enum_at("history.json", "$defs", "run", "properties", "state") == set(RunState)
    assert enum_at("templates-history.json", "properties", "renders", "items", "properties",
                   "state") == set(ChangeState) | {"undone"}
    assert enum_at("backups-list.json", "properties", "backups", "items", "properties",
                   "category") == set(NAMES)


# -- the real documents -------------------------------------------------------------------

# Schemas of shapes another branch is adding: (is the document in that shape yet, the
# reason to skip until it is). Each turns into a plain pass once its branch is merged.
PENDING: dict[str, tuple[Callable[[Any], bool], str]] = {
    "backups-prune.json": (lambda doc: "backups" in doc,
                           "backups.prune prints its old {dry_run, pruned} shape: the "
                           "{backups: [{id, filename, action, reason}]} shape of issue 13 "
                           "comes with the retention branch"),
}


@pytest.mark.parametrize("step", [s for s in STEPS if s.reports], ids=lambda s: s.label)
def test_each_document_matches_its_schema(step: Step, outcomes: dict[str, Outcome]) -> None:
    """The step's stdout is one JSON document that validates against its task's schema."""
    name = schema_of(step.task)
    schema = load(name)
    doc = outcomes[step.label].document

    pending = PENDING.get(name)
    if pending is not None and not pending[0](doc):
        pytest.skip(pending[1])

    assert errors(schema, doc) == []
    assert doc["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("step", [s for s in STEPS if not s.reports], ids=lambda s: s.label)
def test_a_failing_task_prints_the_error_document(step: Step,
                                                  outcomes: dict[str, Outcome]) -> None:
    """A task that fails with --json still prints one document on stdout,
    {"error": {"message", "exit_code"}} and what it knew: the exit code it exits with and
    the text of its error: line."""
    outcome = outcomes[step.label]
    doc = outcome.document

    assert errors(load(ERROR), doc) == []
    assert doc["error"]["exit_code"] == outcome.code != 0
    line = next(x for x in outcome.stderr.splitlines() if x.startswith("error: "))
    assert line == f"error: {doc['error']['message']}"


# -- that the schemas can fail ------------------------------------------------------------

@pytest.mark.parametrize(("label", "path"), [
    pytest.param("deploy-creates", ("changes", 0, "backup_id"), id="a change's backup_id"),
    pytest.param("deploy-creates", ("changes", 0, "action"), id="a change's action"),
    pytest.param("backups.list", ("backups", 0, "id"), id="the contract's id in the list"),
    pytest.param("backups.status", ("categories", "scripts", "backups", 0, "backup_id"),
                 id="a status backup's backup_id"),
    pytest.param("backups.verify-problems", ("problems", 0, "backup_id"),
                 id="a problem's backup_id"),
    pytest.param("templates.history", ("renders", 0, "backup_id"), id="a render's backup_id"),
    pytest.param("backups.migrate", ("changes", 0, "backup_id"), id="a migrated backup_id"),
    pytest.param("backups.reindex", ("changes", 0, "backup_id"), id="a reindexed backup_id"),
    pytest.param("versions.show", ("schema_version",), id="schema_version"),
    pytest.param("error-unknown-category", ("error", "exit_code"), id="an error's exit_code"),
    pytest.param("deploy-merge-conflict", ("error", "message"), id="an error's message"),
    pytest.param("deploy-conflict", ("conflicts", 0, "target"), id="a conflict's target"),
])
def test_a_document_without_a_documented_key_fails(label: str, path: tuple[Any, ...],
                                                   outcomes: dict[str, Outcome]) -> None:
    """Removing a key the schema documents from a real document makes it invalid."""
    doc = copy.deepcopy(outcomes[label].document)
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]

    assert errors(schema_for(outcomes[label]), doc) != []


@pytest.mark.parametrize(("label", "path", "value"), [
    pytest.param("deploy-creates", ("changes", 0, "action"), "overwrite", id="an action"),
    pytest.param("deploy-creates", ("changes", 0, "category"), "misc", id="a category"),
    pytest.param("history", ("runs", 0, "state"), "gone", id="a run state"),
    pytest.param("history", ("runs", 0, "kind"), "push", id="a run kind"),
    pytest.param("backups.list", ("backups", 0, "backup_id"), "7", id="an id as a string"),
    pytest.param("versions.show", ("schema_version",), SCHEMA_VERSION + 1,
                 id="another schema_version"),
    pytest.param("error-unknown-category", ("error", "exit_code"), 0, id="an exit code of 0"),
    pytest.param("error-config-key", ("error", "line"), "32", id="a line as a string"),
    pytest.param("deploy.scripts-updates", ("changes", 0, "backup_id"), None,
                 id="no backup_id for a change that left a backup"),
    pytest.param("deploy-creates", ("changes", 0, "backup_id"), 1,
                 id="a backup_id for a change that left none"),
    pytest.param("deploy-dry-run", ("run",), 5, id="a run id for a dry run"),
    pytest.param("backups.migrate-dry-run", ("changes", 0, "change"), 5,
                 id="a change id in a dry run"),
])
def test_a_value_the_contract_does_not_allow_fails(label: str, path: tuple[Any, ...],
                                                   value: Any,
                                                   outcomes: dict[str, Outcome]) -> None:
    """A value outside the enums (or of the wrong type) makes a real document invalid."""
    doc = copy.deepcopy(outcomes[label].document)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value

    assert errors(schema_for(outcomes[label]), doc) != []


@pytest.mark.parametrize("label", ["deploy-creates", "backups.list", "backups.verify-problems",
                                   "templates.history", "backups.reindex"])
def test_a_key_added_keeps_a_document_valid(label: str, outcomes: dict[str, Outcome]) -> None:
    """Keys may be added (the contract): a new key at the top and in a record is allowed."""
    doc = copy.deepcopy(outcomes[label].document)
    doc["a_key_added_later"] = [1]
    records = next(v for v in doc.values() if isinstance(v, list) and v)
    records[0]["another_key"] = {"any": "value"}

    assert errors(schema_for(outcomes[label]), doc) == []


def test_the_schemas_ship_with_the_package() -> None:
    """The installed command has the schemas too: deploy_tasks/schemas is package data
    pointing at the same files."""
    from importlib.resources import files

    shipped = files("deploy_tasks").joinpath("schemas")
    pyproject = (REPO / "pyproject.toml").read_text()

    assert sorted(p.name for p in shipped.iterdir() if p.name.endswith(".json")) == \
        schema_names()
    assert 'deploy_tasks = ["schemas/*.json"]' in pyproject
    assert Path(str(shipped)).resolve() == SCHEMAS.resolve()


def test_check_jsonschema_validates_a_document_as_the_readme_shows(
        tmp_path: Path, outcomes: dict[str, Outcome]) -> None:
    """The README's command: check-jsonschema --schemafile schemas/X.json DOC, offline; it
    passes the real backups.list document and names the key a broken one lacks."""
    import subprocess
    import sys

    good, bad = tmp_path / "backups.json", tmp_path / "broken.json"
    good.write_text(outcomes["backups.list"].stdout)
    doc = outcomes["backups.list"].document
    del doc["backups"][0]["backup_id"]
    bad.write_text(json.dumps(doc))
    command = [sys.executable, "-m", "check_jsonschema", "--schemafile",
               str(SCHEMAS / "backups-list.json")]

    passed = subprocess.run([*command, str(good)], capture_output=True, text=True,
                            check=False, timeout=60)
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True,
                            check=False, timeout=60)

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert failed.returncode == 1 and "'backup_id' is a required property" in failed.stdout


@pytest.mark.parametrize("name", ["backups-migrate.json", "backups-reindex.json"])
def test_imported_changes_are_run_changes_with_more_keys(name: str) -> None:
    """A migrate or reindex change is a run.json change and then some: the shared keys are
    described alike (each schema is self-contained, so the copy is checked here)."""
    change = load("run.json")["$defs"]["change"]
    other = load(name)["$defs"]["change"]
    shared = set(change["properties"]) & set(other["properties"]) - {"action"}

    assert set(change["required"]) <= set(other["required"])
    assert {k: other["properties"][k] for k in shared} == \
        {k: change["properties"][k] for k in shared}

"""The task layer's own promises: the rollback flags' help comes from the category table."""

from __future__ import annotations

import pytest

from deploy import categories
from tests.conftest import Project


@pytest.mark.parametrize("category", [
    pytest.param(c, id=c.name) for c in categories.TABLE if c.flag])
def test_rollback_narrowing_flags_show_the_category_tables_help(project: Project,
                                                                category: categories.Category
                                                                ) -> None:
    """``invoke --help rollback.<category>`` describes the narrowing flag in the table's words."""
    done = project.ok("--help", f"rollback.{category.name}")

    # Invoke wraps the help column; the flag's own text follows its name.
    assert f"--{category.flag} {category.help}" in " ".join(done.stdout.split()), done.stdout

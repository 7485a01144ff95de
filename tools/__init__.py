"""The course's command-line tools, run from the repository root: ``python -m tools.NAME``.

``run_notebooks`` (execute and time notebooks), ``figure_index`` (the figure list and index
page), ``make_slides`` and ``mark_slides`` (slide decks), ``make_exercises`` (student
versions), ``claims_report`` (claims over seeds), ``typed_numbers`` (result numbers typed into
Markdown), ``lint_workflows`` (actionlint) and ``budgets`` (notebook times: the budgets file
and the time tables of README.md and slides/TEACHING.md). :mod:`tools.notebooks` holds what
they share about reading notebooks. They need the course's development tools (papermill,
nbformat, node assets), which is why they live beside :mod:`tlhelpers` and not inside it.
"""

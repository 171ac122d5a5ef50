"""No import circles in tfzoo/, and the dependency rule: tfzoo/ never imports export/ or apps/.

Read with `ast` (tests/import_graph.py); nothing is imported, so this runs in
a second.
"""

import pytest

from import_graph import circles, import_graph, imports, package_modules


def test_no_circle_among_module_level_imports_of_tfzoo():
    assert circles(import_graph("tfzoo", function_level=False)) == []


@pytest.mark.parametrize("package", ["tfzoo.data", "tfzoo.training"])
def test_no_circle_even_through_function_level_imports(package):
    graph = import_graph("tfzoo", function_level=True)
    inside = [circle for circle in circles(graph) if any(module.startswith(package) for module in circle)]
    assert inside == []


def test_tfzoo_never_imports_export_or_apps():
    offending = []
    for module, path in sorted(package_modules("tfzoo").items()):
        for base, _, _ in imports(path, module):
            if base.split(".")[0] in ("export", "apps"):
                offending.append(f"{module} imports {base}")
    assert offending == []


def test_the_checker_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

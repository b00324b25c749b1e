"""The code keeps the shape DEVELOPERS.md asks for (read from the source by tests/support/layout.py)."""

from __future__ import annotations

from tests.support.layout import behind_interfaces, cycles, layer_of, read_modules, upward_imports

MODULES = read_modules()


def test_no_module_over_400_lines() -> None:
    assert {m.name: m.lines for m in MODULES.values() if m.lines > 400} == {}


def test_no_class_over_300_lines_and_no_function_over_60() -> None:
    assert {m.name: m.long_classes for m in MODULES.values() if m.long_classes} == {}
    assert {m.name: m.long_functions for m in MODULES.values() if m.long_functions} == {}


def test_constructors_with_more_than_four_fields_take_them_by_keyword() -> None:
    assert {m.name: m.wide_constructors for m in MODULES.values() if m.wide_constructors} == {}


def test_no_code_reads_another_objects_private_fields() -> None:
    assert {m.name: m.private_reads for m in MODULES.values() if m.private_reads} == {}


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


def test_no_import_cycles_type_only_ones_included() -> None:
    assert cycles(MODULES) == []


def test_imports_only_go_down() -> None:
    assert upward_imports(MODULES) == []


def test_other_layers_are_reached_through_their_interface() -> None:
    assert behind_interfaces(MODULES) == []

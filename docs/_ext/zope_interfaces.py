"""A small Sphinx extension: document zope.interface interfaces with autodoc.

An interface made with ``class IFoo(Interface)`` is not a class at run time
but an ``InterfaceClass`` instance, and its methods and attributes are not
attributes of it. autodoc therefore renders it as a plain value. This
extension adds one directive, ``autointerface``, which renders an interface
as a class: its docstring, the interfaces it extends, then each declared
attribute and method (with the signature zope.interface recorded) in
declaration order.

geventio needs only this much; it is kept here rather than depending on a
third-party extension so the docs build with Sphinx alone.
"""

from __future__ import annotations

import importlib
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from zope.interface.interface import Method


def _indent(text: str, width: int) -> list[str]:
    from inspect import cleandoc

    pad = " " * width
    return [pad + line if line else "" for line in cleandoc(text or "").splitlines()]


class AutoInterface(SphinxDirective):
    """``.. autointerface:: package.module.IName``"""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        dotted = self.arguments[0]
        module_name, _, name = dotted.rpartition(".")
        module = importlib.import_module(module_name)
        iface: Any = getattr(module, name)
        self.env.note_dependency(module.__file__ or "")

        bases = [
            f":class:`~{b.__module__}.{b.__name__}`"
            for b in iface.__bases__
            if b.__name__ != "Interface"
        ]
        lines = [f".. py:class:: {name}", f"   :module: {module_name}", ""]
        if bases:
            lines += [f"   Extends {', '.join(bases)}.", ""]
        lines += _indent(iface.__doc__ or "", 3)
        lines.append("")
        # namesAndDescriptions(all=False): what this interface declares
        # itself, in declaration order (it keeps the class body's order).
        for attr_name, desc in iface.namesAndDescriptions(all=False):
            if isinstance(desc, Method):
                signature = desc.getSignatureString()
                lines += [f"   .. py:method:: {attr_name}{signature}", ""]
            else:
                lines += [f"   .. py:attribute:: {attr_name}", ""]
            lines += _indent(desc.getDoc() or "", 6)
            lines.append("")

        node = nodes.section()
        node.document = self.state.document
        self.state.nested_parse(StringList(lines, source=dotted), 0, node)
        return node.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("autointerface", AutoInterface)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

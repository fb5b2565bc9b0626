"""Small lxml helpers shared by the message modules (each binds its own namespace)."""

from __future__ import annotations

from lxml import etree


def sub(
    namespace: str, parent: etree._Element, tag: str, text: str | None = None
) -> etree._Element:
    """Append `<tag>` (in `namespace`) to `parent`, with optional text."""
    element = etree.SubElement(parent, f"{{{namespace}}}{tag}")
    if text is not None:
        element.text = text
    return element


def text_at(nsmap: dict[str, str], element: etree._Element, path: str) -> str | None:
    """The stripped text at `path` (prefix `d:` for the message namespace), or None."""
    value = element.findtext(path, namespaces=nsmap)
    return value.strip() if value is not None else None

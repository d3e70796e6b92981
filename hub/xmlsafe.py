"""Hardened XML parsing: no DTDs, no entities, no network, bounded size and depth."""

from __future__ import annotations

import functools
import threading

from lxml import etree

from hub.errors import FormatError, OversizeError


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # keeps libxml2's own limits on text and attribute sizes
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )


# lxml parsers are not thread-safe; each thread gets its own.
_local = threading.local()


def _thread_parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _parser()
    return parser


def parse(data: bytes, *, max_bytes: int, max_depth: int) -> etree._Element:
    """Parse untrusted bytes into a root element or raise a FormatError that says why."""
    if not data:
        raise FormatError("empty file")
    if len(data) > max_bytes:
        raise OversizeError(f"file of {len(data)} bytes is over the limit of {max_bytes} bytes")
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"<!" in head:  # rare in a message (a comment): only then the case-blind look
        upper = head.upper()
        if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
            raise FormatError("document type declarations (DOCTYPE) are not accepted")
    try:
        root = etree.fromstring(data, parser=_thread_parser())
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. a unicode string with an encoding declaration
        raise FormatError(f"not readable as XML: {exc}") from None
    if root is None:
        raise FormatError("not XML")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise FormatError("document type declarations (DOCTYPE) are not accepted")
    _check_depth(root, max_depth)
    return root


@functools.lru_cache(maxsize=8)
def _too_deep(max_depth: int) -> etree.XPath:
    """True when some element, comment or PI has `max_depth` or more element ancestors."""
    above = "/*" * max_depth  # the elements at depth max_depth - 1, the root being depth 0
    return etree.XPath(f"boolean({above}/* | {above}/comment() | {above}/processing-instruction())")


def _check_depth(root: etree._Element, max_depth: int) -> None:
    # One compiled XPath walks the levels in C; a Python walk over every leaf cost more than
    # the parse itself.
    too_deep = _too_deep(max_depth)(root) if max_depth > 0 else True
    if too_deep:
        raise FormatError(f"elements nested deeper than {max_depth} levels")

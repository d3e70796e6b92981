"""Our XSDs, compiled once: fast first-error validation (lxml) and full diagnostics (xmlschema)."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from hub.constants import DXP_NS, SCHEMA_SET_ID, XSD_DIR
from hub.errors import FormatError, SchemaError

__all__ = [
    "CEB_XSD",
    "DXP_XSD",
    "SCHEMA_SET_ID",
    "Diagnostic",
    "diagnose",
    "validate",
    "validate_envelope",
]

CEB_XSD = XSD_DIR / "ceb-import-202205.xsd"
DXP_XSD = XSD_DIR / "dxp-202205.xsd"

MAX_FILE_BYTES = 64 * 1024 * 1024  # diagnose() limits: generous, it reads files an operator names
MAX_DEPTH = 64
VALUE_SHOWN = 40  # characters of a bad value quoted back in a message


@dataclass(frozen=True)
class Diagnostic:
    """One schema error of a file: where, what was expected, and the line if known."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


# ---------------------------------------------------------------------------------------------
# Loading


class _LocalOnly(etree.Resolver):
    """Refuses every schema document outside xsd/, so compiling can never reach the network."""

    def resolve(self, system_url, public_id, context):
        path = Path(system_url.removeprefix("file://"))
        path = (path if path.is_absolute() else XSD_DIR / path).resolve()
        if path.parent != XSD_DIR.resolve():
            raise FormatError(f"schema import outside {XSD_DIR} refused: {system_url}")
        return self.resolve_filename(str(path), context)


def _compile(xsd: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalOnly())
    return etree.XMLSchema(etree.parse(str(xsd), parser))


# lxml keeps the last validation's error log on the schema object, so threads get their own.
_local = threading.local()


def _lxml_schema(xsd: Path) -> etree.XMLSchema:
    cache = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    if xsd not in cache:
        cache[xsd] = _compile(xsd)
    return cache[xsd]


@functools.cache
def _xmlschema(xsd: Path):
    import xmlschema  # slow to import and only needed off the hot path

    return xmlschema.XMLSchema(str(xsd), allow="sandbox", defuse="always")


# ---------------------------------------------------------------------------------------------
# Hot path


def validate(root: etree._Element) -> None:
    """Raise SchemaError for the first way `root` breaks our CEB import schema."""
    _validate(_lxml_schema(CEB_XSD), root)


def validate_envelope(root: etree._Element) -> None:
    """Raise SchemaError for the first way `root` breaks our DXP envelope schema."""
    _validate(_lxml_schema(DXP_XSD), root)


def _validate(schema: etree.XMLSchema, root: etree._Element) -> None:
    if schema.validate(root):
        return
    entry = schema.error_log[0]
    info, path = _explain(entry.message, _node_at(root, entry.path))
    raise SchemaError(info, path=path)


# ---------------------------------------------------------------------------------------------
# Turning a libxml2 message into plain words

_HEAD = re.compile(
    r"^Element '(?P<tag>[^']+)'(?:, attribute '(?P<attr>[^']+)')?: (?P<rest>.*)$", re.S
)
_FACET = re.compile(r"^\[facet '(?P<facet>\w+)'\] (?P<text>.*)$", re.S)
_LIMIT = re.compile(r"allowed (?:\w+ )*(?:length|digits)? ?of '?(?P<n>[-\d.]+)'?|\('(?P<m>\d+)'\)")
_SET = re.compile(r"set \{(?P<set>.*)\}")
_EXPECTED = re.compile(r"Expected is (?:one of )?\( (?P<names>.*) \)")
_BAD_TYPE = re.compile(
    r"is not a valid value of the (?:local )?(?:atomic|union|list) type '(?P<type>[^']*)'"
)
_MISSING_ATTR = re.compile(r"The attribute '(?P<attr>[^']+)' is required but missing")


def _local_name(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _quote(value: str | None) -> str:
    value = value or ""
    return repr(value if len(value) <= VALUE_SHOWN else value[:VALUE_SHOWN] + "…")


def _node_at(root: etree._Element, xpath: str | None) -> etree._Element:
    """The element a libxml2 error path points at (prefixes as in the document), else the root."""
    if not xpath:
        return root
    namespaces = {}
    for el in root.iter():
        namespaces.update({p: u for p, u in el.nsmap.items() if p})
    try:
        found = root.getroottree().xpath(xpath, namespaces=namespaces)
    except etree.XPathError:
        return root
    return found[0] if found and isinstance(found[0], etree._Element) else root


def readable_path(el: etree._Element) -> str:
    """`CEB311Message/Order[2]/OrderHead/orderNo`: local names, positions where names repeat."""
    steps = []
    while el is not None:
        name = etree.QName(el).localname
        parent = el.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == el.tag]
            if len(same) > 1:
                name += f"[{same.index(el) + 1}]"
        steps.append(name)
        el = parent
    return "/".join(reversed(steps))


def _explain(message: str, el: etree._Element) -> tuple[str, str]:
    """(info, path) for one libxml2 validation message about element `el`."""
    path = readable_path(el)
    head = _HEAD.match(message.strip())
    if not head:
        return message.strip(), path
    field, attr, rest = _local_name(head["tag"]), head["attr"], head["rest"].strip()
    if attr:
        return f"{attr}: {_value_problem(rest, el.get(attr))}", f"{path}/@{attr}"
    if missing := _MISSING_ATTR.search(rest):
        return f"missing required attribute '{missing['attr']}'", f"{path}/@{missing['attr']}"
    if "No matching global declaration" in rest:
        return f"'{field}' is not a message of the schema set {SCHEMA_SET_ID}", path
    if "This element is not expected" in rest or "Missing child element" in rest:
        return _content_problem(rest, el, path)
    if "Element content is not allowed" in rest:
        return f"{field}: must hold a value, not child elements", path
    if "Character content other than whitespace" in rest:
        return f"{field}: text is not allowed here, only child elements", path
    return f"{field}: {_value_problem(rest, el.text)}", path


def _expected_names(rest: str) -> list[str]:
    found = _EXPECTED.search(rest)
    if not found:
        return []
    return [_local_name(n.strip()) for n in found["names"].split(",") if n.strip()]


def _content_problem(rest: str, el: etree._Element, path: str) -> tuple[str, str]:
    """Missing, misplaced or surplus child elements, told apart by looking at the siblings."""
    expected = _expected_names(rest)
    missing = "Missing child element" in rest
    parent = el if missing else el.getparent()
    # Names already present have met their minimum, whatever libxml2 offers next.
    seen = el if missing else el.itersiblings(preceding=True)
    want = _first_required(parent, [n for n in expected if n not in _local_names(seen)])
    if missing:
        return f"missing required element '{want or _names(expected)}'", f"{path}/{want or ''}"
    found = etree.QName(el).localname
    parent_path = readable_path(parent) if parent is not None else ""
    earlier = [s for s in el.itersiblings(preceding=True) if s.tag == el.tag]
    if earlier:
        allowed = f"; expected {_names(expected)}" if expected else ""
        return (
            f"too many '{found}' elements: number {len(earlier) + 1} is not allowed here{allowed}",
            path,
        )
    if not want:
        allowed = f"; expected {_names(expected)}" if expected else ""
        return f"unexpected element '{found}'{allowed}", path
    later = {etree.QName(s).localname for s in el.itersiblings()}
    if want in later:
        return f"element '{want}' expected before '{found}'", f"{parent_path}/{want}"
    return f"missing required element '{want}' (found '{found}')", f"{parent_path}/{want}"


def _local_names(elements) -> set[str]:
    return {etree.QName(e).localname for e in elements if isinstance(e.tag, str)}


def _first_required(parent: etree._Element | None, expected: list[str]) -> str | None:
    optional = (
        _optional_children().get(etree.QName(parent).localname, set())
        if parent is not None
        else set()
    )
    return next((name for name in expected if name not in optional), None)


@functools.cache
def _optional_children() -> dict[str, set[str]]:
    """Element name -> names of its children with minOccurs 0, read from our XSDs."""
    xs = "{http://www.w3.org/2001/XMLSchema}"
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    docs = [etree.parse(str(p), parser).getroot() for p in sorted(XSD_DIR.glob("*.xsd"))]
    types = {t.get("name"): t for d in docs for t in d.iter(f"{xs}complexType") if t.get("name")}
    optional: dict[str, set[str]] = {}
    for decl in (e for d in docs for e in d.iter(f"{xs}element") if e.get("name")):
        model = decl.find(f"{xs}complexType")
        if model is None and decl.get("type"):
            model = types.get(_local_name(decl.get("type")))
        if model is None:
            continue
        for child in model.iter(f"{xs}element"):
            if child.getparent() is not None and child.get("minOccurs") == "0":
                name = child.get("name") or _local_name(child.get("ref", ""))
                optional.setdefault(decl.get("name"), set()).add(name)
    return optional


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _value_problem(rest: str, value: str | None) -> str:
    """Plain words for a bad simple value; the caller prefixes the field name."""
    shown = _quote(value)
    facet = _FACET.match(rest)
    if facet:
        return _facet_problem(facet["facet"], facet["text"], shown)
    if bad := _BAD_TYPE.search(rest):
        return f"value {shown} is not valid: expected {describe_type(bad['type'])}"
    if "is not valid. Expected is" in rest:  # a fixed value
        return f"value {shown} is not allowed; {rest.split('Expected is', 1)[1].strip(' .')} is required"
    return rest


def _facet_problem(facet: str, text: str, shown: str) -> str:
    limit = _LIMIT.search(text)
    n = (limit["n"] or limit["m"]) if limit else "?"
    if facet == "maxLength":
        return f"value {shown} is longer than {n} characters"
    if facet == "minLength":
        return "must not be empty" if n == "1" else f"value {shown} is shorter than {n} characters"
    if facet == "length":
        return f"value {shown} must be exactly {n} characters long"
    if facet == "enumeration":
        allowed = _SET.search(text)
        return f"value {shown} is not one of {allowed['set'] if allowed else 'the allowed codes'}"
    if facet == "pattern":
        return f"value {shown} does not have the form {_form(text)}"
    if facet == "fractionDigits":
        return f"value {shown} has more than {n} digits after the decimal point"
    if facet == "totalDigits":
        return f"value {shown} has more than {n} digits"
    if facet in ("minInclusive", "minExclusive"):
        return f"value {shown} is below the minimum {n}"
    if facet in ("maxInclusive", "maxExclusive"):
        return f"value {shown} is above the maximum {n}"
    return text


def _form(pattern_text: str) -> str:
    # Our only patterns are the spec's date and time formats (ceb-types-202205.xsd).
    if "{3}" in pattern_text:
        return "YYYYMMDDhhmmssSSS"
    if "[0-5]" in pattern_text:
        return "YYYYMMDDhhmmss"
    return "YYYYMMDD"


_TYPE_WORDS = {
    "Amount": "a decimal number of at most 19 digits, 5 after the point",
    "LineNo": "a whole number from 1",
    "Count9": "a whole number of at most 9 digits",
    "Date8": "a date YYYYMMDD",
    "Time14": "a time YYYYMMDDhhmmss",
    "Time17": "a time YYYYMMDDhhmmssSSS",
    "Guid": "exactly 36 characters",
    "int": "a whole number",
    "decimal": "a decimal number",
    "dateTime": "a date-time yyyy-mm-ddThh:mm:ss",
    "date": "a date yyyy-mm-dd",
    "base64Binary": "base64 data",
    "ID": "an XML name (not empty, not starting with a digit)",
}


def describe_type(type_name: str | None) -> str:
    """What a value of one of our simple types looks like, in words."""
    name = _local_name(type_name or "")
    if name in _TYPE_WORDS:
        return _TYPE_WORDS[name]
    if name.startswith("Opt") and name != "Opt":
        rest = name[3:]
        if rest.startswith("Text"):
            return f"at most {rest[4:]} characters"
        return f"empty or {describe_type(rest)}"
    if (m := re.fullmatch(r"Text(\d+)", name)) is not None:
        return f"1 to {m[1]} characters"
    if (m := re.fullmatch(r"Code(\d+)", name)) is not None:
        return f"exactly {m[1]} characters"
    if name.endswith("Code"):
        return "one of the spec's codes"
    return f"a valid {name}" if name else "valid"


# ---------------------------------------------------------------------------------------------
# Full diagnostics (xmlschema: every error, slow)


def diagnose(data: bytes) -> list[Diagnostic]:
    """Every schema error of a CEB message or DxpMsg file (and of the envelope's payload)."""
    from hub import xmlsafe

    try:
        root = xmlsafe.parse(data, max_bytes=MAX_FILE_BYTES, max_depth=MAX_DEPTH)
    except FormatError as exc:
        return [Diagnostic(path="", message=exc.info)]
    if etree.QName(root).namespace != DXP_NS:
        return _diagnose_tree(root, CEB_XSD)
    found = _diagnose_tree(root, DXP_XSD)
    return found + _diagnose_payload(root)


def _diagnose_payload(envelope: etree._Element) -> list[Diagnostic]:
    data = envelope.find(f"{{{DXP_NS}}}Data")
    if data is None or not (data.text or "").strip():
        return []  # the envelope's own diagnostics already say so
    try:
        payload = base64.b64decode("".join(data.text.split()), validate=True)
    except (binascii.Error, ValueError):
        return []  # reported as a base64Binary error of Data
    prefix = readable_path(data)
    return [
        Diagnostic(path=f"{prefix}: {d.path}" if d.path else prefix, message=d.message, line=d.line)
        for d in diagnose(payload)
    ]


def _diagnose_tree(root: etree._Element, xsd: Path) -> list[Diagnostic]:
    import xmlschema

    schema = _xmlschema(xsd)
    resource = xmlschema.XMLResource(root.getroottree(), allow="none", defuse="always")
    found = [_diagnostic(schema, err) for err in schema.iter_errors(resource)]
    if not found:
        # The hub decides with lxml; should the two engines ever disagree, say what lxml says.
        try:
            _validate(_lxml_schema(xsd), root)
        except SchemaError as exc:
            found = [Diagnostic(exc.path or "", exc.info)]
    return sorted(found, key=lambda d: d.line or 0)


def _diagnostic(schema, err) -> Diagnostic:
    el = err.elem if isinstance(err.elem, etree._Element) else None
    line = getattr(err, "sourceline", None)
    if el is None:
        return Diagnostic(err.path or "", err.reason or str(err.message), line)
    path, reason = readable_path(el), err.reason or str(err.message)
    if type(err).__name__ == "XMLSchemaChildrenValidationError":
        return Diagnostic(path, _children_problem(el, err), line)
    if el.getparent() is None and "not an element of the schema" in reason:
        message = (
            f"'{etree.QName(el).localname}' is not a message of the schema set {SCHEMA_SET_ID}"
        )
        return Diagnostic(path, message, line)
    if "attribute" in reason or len(el):
        return Diagnostic(path, reason, line)
    return Diagnostic(path, _simple_problem(el, reason, _declared_type(schema, err)), line)


def _simple_problem(el: etree._Element, reason: str, type_name: str | None) -> str:
    field, words = etree.QName(el).localname, describe_type(type_name)
    name = _local_name(type_name or "")
    if name.startswith("Opt") and not name.startswith("OptText"):
        # A union with Empty: xmlschema reports the first member's complaint, which misleads.
        return f"{field}: value {_quote(el.text)} is not valid: expected {words}"
    if name.endswith("Code") or not type_name:
        return (
            f"{field}: value {_quote(el.text)} is not valid: {reason}"  # the reason lists the codes
        )
    return f"{field}: value {_quote(el.text)} is not valid: {reason}; expected {words}"


def _children_problem(parent: etree._Element, err) -> str:
    expected = [_local_name(x.name) for x in (err.expected or []) if getattr(x, "name", None)]
    invalid = getattr(err, "invalid_tag", None)
    if invalid is None:
        # As with lxml, the last offered name of a sequence is the first required one.
        return f"missing required element '{expected[-1]}'" if expected else err.reason
    found = _local_name(invalid)
    child = err.invalid_child if isinstance(err.invalid_child, etree._Element) else None
    if child is not None and any(s.tag == child.tag for s in child.itersiblings(preceding=True)):
        return (
            f"too many '{found}' elements; expected {_names(expected) if expected else 'nothing'}"
        )
    if not expected:
        return f"unexpected element '{found}'"
    want = expected[-1]
    later = {etree.QName(s).localname for s in child.itersiblings()} if child is not None else set()
    if want in later:
        return f"element '{want}' expected before '{found}'"
    if len(expected) == 1:
        return f"missing required element '{want}' (found '{found}')"
    return f"unexpected element '{found}'; expected {_names(expected)}"


def _declared_type(schema, err) -> str | None:
    """The name of the simple type the failing element is declared with, if we can find it."""
    try:
        decl = schema.find(re.sub(r"\[\d+\]", "", err.path), namespaces=err.namespaces)
    except Exception:  # an xpath xmlschema cannot follow: fall back to the reason alone
        return None
    return getattr(getattr(decl, "type", None), "name", None)

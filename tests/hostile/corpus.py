"""The hostile corpus: hand-written and generated files, each with the answer the hub owes it."""

from __future__ import annotations

import base64
import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from hub import codes
from hub.constants import CEB_NS
from hub.generator import (
    DEMO_PARTIES,
    dxp_envelope,
    list_message,
    make_purchases,
    order_message,
    payment_message,
    to_bytes,
    waybill_message,
)
from hub.messages.types import by_root

DS = "http://www.w3.org/2000/09/xmldsig#"
ACCEPTED = "accepted"  # the file is valid: stored, answered 2 (…)
IGNORED = "ignored"  # a temp name by design (§7): never claimed, left where it is
MB = 1024 * 1024

SENDER = {
    "CEB311Message": "platform",
    "CEB411Message": "payment",
    "CEB511Message": "logistics",
    "CEB621Message": "agent",
}
BUILD = {
    "CEB311Message": order_message,
    "CEB411Message": payment_message,
    "CEB511Message": waybill_message,
    "CEB621Message": list_message,
}


@dataclass(frozen=True)
class Case:
    """One hostile file: where it is dropped and what the hub must answer."""

    name: str | bytes  # the file name in the inbox (bytes: not valid UTF-8)
    partner: str
    data: bytes
    expect: frozenset[str]  # acceptable outcomes: ACCEPTED, IGNORED or a negative returnStatus
    words: str = ""  # the reason must mention this (case-insensitive), when rejected
    group: str = ""


class Corpus:
    """Builds the cases; `keys` are the session's PartyKeys, `canary` a URL nobody may fetch."""

    def __init__(self, keys, canary: str, seed: int = 2024) -> None:
        self.keys = keys
        self.canary = canary
        self.rng = random.Random(seed)
        self.purchases = iter(make_purchases(400, seed=seed))
        self.cases: list[Case] = []
        self._n = 0

    # ------------------------------------------------------------ building blocks

    def fresh(self, msg_type: str = "CEB311Message") -> etree._Element:
        """An unsigned valid message of a purchase no other case uses."""
        return BUILD[msg_type]([next(self.purchases)], DEMO_PARTIES, rng=self.rng)

    def sign(self, root: etree._Element, msg_type: str, who: str | None = None) -> etree._Element:
        return self.keys[who or SENDER[msg_type]].sign(root)

    def signed(self, msg_type: str = "CEB311Message") -> etree._Element:
        return self.sign(self.fresh(msg_type), msg_type)

    def add(
        self,
        slug: str,
        data: bytes,
        expect: str | set[str],
        *,
        partner: str = "platform",
        words: str = "",
        group: str = "",
        name: str | bytes | None = None,
    ) -> None:
        self._n += 1
        wanted = frozenset({expect} if isinstance(expect, str) else expect)
        self.cases.append(
            Case(name or f"h{self._n:03d}-{slug}.xml", partner, data, wanted, words, group or slug)
        )

    # ------------------------------------------------------------ the corpus

    def build(self, *, big: bool = True) -> list[Case]:
        self.parser_attacks()
        self.encodings()
        self.junk_and_truncation()
        for msg_type in SENDER:
            self.signature_attacks(msg_type)
        self.odd_names()
        self.envelopes()
        if big:
            self.add("100mb", b"<a>" + b"x" * (100 * MB) + b"</a>", codes.OTHER_FORMAT_ERROR,
                     words="over the limit")  # fmt: skip
        return self.cases

    def parser_attacks(self) -> None:
        fmt = codes.FORMAT_ERROR
        ceb = f'<ceb:CEB311Message xmlns:ceb="{CEB_NS}" guid="X" version="1.0">'
        doctypes = {
            "xxe-file": b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
            "xxe-net": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{self.canary}/xxe">]>'.encode(),
            "xxe-param": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{self.canary}/p"> %p;]>'.encode(),
            "external-dtd": f'<!DOCTYPE r SYSTEM "{self.canary}/dtd">'.encode(),
            "external-public": f'<!DOCTYPE r PUBLIC "-//X//Y" "{self.canary}/pub">'.encode(),
            "doctype-plain": b"<!DOCTYPE r>",
            "doctype-internal": b"<!DOCTYPE r [<!ELEMENT r ANY>]>",
            "doctype-lower": b"<!doctype r>",
            "billion-laughs": b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>',
            "quadratic-blowup": b'<!DOCTYPE q [<!ENTITY a "' + b"x" * 50000 + b'">]>',
        }
        bodies = {"root": "<r>&x;</r>", "ceb": ceb + "&x;</ceb:CEB311Message>"}
        for slug, dt in doctypes.items():
            for where, body in bodies.items():
                for decl in (b'<?xml version="1.0"?>\n', b""):
                    self.add(f"{slug}-{where}-{len(decl)}", decl + dt + body.encode(), fmt,
                             words="DOCTYPE", group=slug)  # fmt: skip
        # A DOCTYPE behind 5000 bytes of comment: past the quick look at the head.
        late = (
            b"<?xml version='1.0'?><!--"
            + b"c" * 5000
            + b"-->"
            + doctypes["xxe-file"]
            + b"<r>&x;</r>"
        )
        self.add("doctype-late", late, fmt, words="DOCTYPE")
        # An entity reference with no DOCTYPE, and a signed order that smuggles one in.
        self.add("undeclared-entity", ceb.encode() + b"&x;</ceb:CEB311Message>", fmt)
        for depth in (41, 100, 300, 5000, 100000):
            self.add(f"deep-{depth}", b"<a>" * depth + b"</a>" * depth, fmt, group="deep")
        inner = self.signed()
        node = inner
        for _ in range(45):
            node = etree.SubElement(node, f"{{{CEB_NS}}}x")
        self.add("deep-inside-ceb", to_bytes(inner), fmt, words="nested", group="deep")
        self.add("huge-attribute", b'<a b="' + b"x" * (8 * MB) + b'"/>', fmt, words="CEB",
                 group="huge")  # fmt: skip
        self.add("huge-attribute-20mb", b'<a b="' + b"x" * (20 * MB) + b'"/>',
                 codes.OTHER_FORMAT_ERROR, words="over the limit", group="huge")  # fmt: skip
        self.add("huge-text-9mb", b"<a>" + b"y" * (9 * MB) + b"</a>", fmt, group="huge")
        self.add("many-attributes", b"<a " + b" ".join(b'a%d="1"' % i for i in range(50000)) + b"/>",
                 fmt, group="huge")  # fmt: skip
        self.add("xinclude", b'<r xmlns:xi="http://www.w3.org/2001/XInclude">'
                 b'<xi:include href="file:///etc/passwd" parse="text"/></r>', fmt, words="CEB")  # fmt: skip
        self.add("xslt-pi", b'<?xml-stylesheet href="' + self.canary.encode() + b'/x.xsl"?><r/>',
                 fmt, words="CEB")  # fmt: skip
        self.add("schema-location", ceb.replace(">", f' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="{CEB_NS} {self.canary}/s.xsd">', 1).encode() + b"</ceb:CEB311Message>",
                 {codes.FORMAT_ERROR, codes.SIGNATURE_INVALID, codes.SCHEMA_ERROR})  # fmt: skip

    def encodings(self) -> None:
        fmt = codes.FORMAT_ERROR
        good = to_bytes(self.signed())
        self.add("bom-utf8", b"\xef\xbb\xbf" + to_bytes(self.signed()), ACCEPTED, group="encoding")
        for codec, bom in (("utf-16", b""), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")):
            text = to_bytes(self.signed()).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
            data = bom + text.encode(codec)
            self.add(f"utf16-{codec}", data, {ACCEPTED, fmt}, group="encoding")
        self.add("gbk-declared-utf8-sent", good.replace(b'encoding="UTF-8"', b'encoding="GBK"'),
                 {fmt, codes.SIGNATURE_MISMATCH}, group="encoding")  # fmt: skip
        text = to_bytes(self.signed()).decode()
        self.add("utf8-declared-gbk-sent", text.encode("gbk"), fmt, group="encoding")
        self.add("gbk-declared-gbk-sent",
                 text.replace('encoding="UTF-8"', 'encoding="GBK"').encode("gbk"),
                 {ACCEPTED, fmt}, group="encoding")  # fmt: skip
        self.add("latin1-declared", good.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'),
                 {fmt, codes.SIGNATURE_MISMATCH}, group="encoding")  # fmt: skip
        self.add("unknown-encoding", good.replace(b'encoding="UTF-8"', b'encoding="x-nonsense"'),
                 fmt, group="encoding")  # fmt: skip
        self.add("ebcdic-declared", good.replace(b'encoding="UTF-8"', b'encoding="EBCDIC-US"'),
                 fmt, group="encoding")  # fmt: skip
        self.add("utf32", to_bytes(self.signed()).decode().replace('encoding="UTF-8"', 'encoding="UTF-32"').encode("utf-32"),
                 {ACCEPTED, fmt}, group="encoding")  # fmt: skip
        self.add("bom-then-utf16-declared", b"\xef\xbb\xbf" + good.replace(b"UTF-8", b"UTF-16"),
                 {fmt, ACCEPTED}, group="encoding")  # fmt: skip
        at = good.index(b"<ceb:orderNo>") + len(b"<ceb:orderNo>")
        for i, bad in enumerate(
            (b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\x28", b"\xed\xa0\x80", b"\xc0\xaf")
        ):
            self.add(f"invalid-utf8-{i}", good[:at] + bad + good[at:], fmt, group="invalid-utf8")
        for i, where in enumerate((0, 10, at, len(good) // 2, len(good) - 3)):
            self.add(f"nul-{i}", good[:where] + b"\x00" + good[where:], fmt, group="nul")
        self.add("nul-entity", good[:at] + b"&#0;" + good[at:], fmt, group="nul")
        self.add("control-char", good[:at] + b"\x01" + good[at:], fmt, group="nul")
        self.add("bom-twice", b"\xef\xbb\xbf\xef\xbb\xbf" + good, fmt, group="encoding")

    def junk_and_truncation(self) -> None:
        fmt = codes.FORMAT_ERROR
        self.add("zero-bytes", b"", fmt, words="empty", partner="payment")
        self.add("one-space", b" ", fmt, partner="logistics")
        self.add("only-declaration", b'<?xml version="1.0"?>', fmt, partner="agent")
        self.add("only-bom", b"\xef\xbb\xbf", fmt)
        partners = list(SENDER.values())
        for i in range(20):
            data = self.rng.randbytes(self.rng.choice((1, 16, 512, 4096, 65536)))
            self.add(f"junk-{i}", data, fmt, partner=partners[i % 4], group="junk")
        self.add("gzip", b"\x1f\x8b\x08\x00" + self.rng.randbytes(200), fmt, group="junk")
        self.add("pdf", b"%PDF-1.7\n" + self.rng.randbytes(300), fmt, group="junk")
        self.add("json", b'{"orderNo": "x"}', fmt, group="junk")
        good = to_bytes(self.signed())
        for i, cut in enumerate(
            (1, 5, 39, 100, 500, 1000, len(good) // 2, len(good) - 20, len(good) - 2)
        ):
            self.add(f"truncated-{i}", good[:cut], fmt, group="truncated")
        self.add("two-roots", good + good.split(b"?>", 1)[1], fmt, group="truncated")
        self.add("html", b"<html><body>not a message</body></html>", fmt, words="CEB namespace")
        self.add("unknown-type", f'<ceb:CEB999Message xmlns:ceb="{CEB_NS}" guid="A" version="1.0"/>'.encode(),
                 fmt, words="CEB999Message")  # fmt: skip
        self.add("receipt-from-partner", f'<ceb:CEB312Message xmlns:ceb="{CEB_NS}" guid="A" version="1.0"/>'.encode(),
                 fmt, words="not a message the hub accepts")  # fmt: skip

    def signature_attacks(self, msg_type: str) -> None:
        mt = by_root(msg_type)
        assert mt is not None
        bad_sig, bad_digest = mt.codes.signature_invalid, mt.codes.digest_mismatch
        partner = SENDER[msg_type]
        short = msg_type[:6]

        def add(slug, root_or_bytes, expect, words=""):
            data = root_or_bytes if isinstance(root_or_bytes, bytes) else to_bytes(root_or_bytes)
            self.add(
                f"{short}-{slug}", data, expect, partner=partner, words=words, group=f"dsig-{slug}"
            )

        def sig(root):
            return root.find(f"{{{DS}}}Signature")

        def first_text_field(root):
            head = next(e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("Head"))
            return head.find(f"{{{CEB_NS}}}guid")

        add("valid", self.signed(msg_type), ACCEPTED)
        add("unsigned", self.fresh(msg_type), bad_sig, "signature")
        add(
            "stranger",
            self.sign(self.fresh(msg_type), msg_type, "stranger"),
            bad_sig,
            "certificate",
        )
        other = "platform" if partner != "platform" else "payment"
        add("other-partners-key", self.sign(self.fresh(msg_type), msg_type, other), bad_sig)
        # Changed after signing.
        root = self.signed(msg_type)
        field = next(
            e
            for e in root.iter(f"{{{CEB_NS}}}*")
            if e.text and e.text.strip() and len(e) == 0 and not e.tag.endswith("guid")
        )
        field.text = field.text + "9"
        add("tampered", root, bad_digest, "digest")
        # Wrapping: the signed original hidden in ds:Object, a forged one in its place.
        root = self.signed(msg_type)
        original = copy.deepcopy(root)
        obj = etree.SubElement(sig(root), f"{{{DS}}}Object")
        obj.append(original)
        first_text_field(root).text = "00000000-0000-0000-0000-000000000000"
        add("wrap-object", root, {bad_sig, bad_digest})
        # Wrapping: a new root around the signed original.
        signed = self.signed(msg_type)
        wrapper = etree.Element(signed.tag, nsmap=signed.nsmap, attrib=dict(signed.attrib))
        for child in self.fresh(msg_type):
            wrapper.append(child)
        holder = etree.SubElement(wrapper, f"{{{CEB_NS}}}Wrapper")
        holder.append(signed)
        wrapper.append(copy.deepcopy(sig(signed)))
        add("wrap-root", wrapper, {bad_sig, bad_digest})
        # Wrapping: the signature moved into a record, the record forged.
        root = self.signed(msg_type)
        s = sig(root)
        root.remove(s)
        root[0].append(s)
        add("signature-nested", root, bad_sig, "signature")
        # Two signatures: the second over a forged copy.
        root = self.signed(msg_type)
        root.append(copy.deepcopy(sig(root)))
        add("two-signatures", root, bad_sig, "signature")
        # Signature not last: a forged record after it.
        root = self.signed(msg_type)
        root.append(copy.deepcopy(root[0]))
        add("record-after-signature", root, {bad_sig, bad_digest})
        # Comments in signed text: C14N leaves them out; the hub must read what was signed.
        data = to_bytes(self.signed(msg_type))
        at = data.index(b"<ceb:guid>") + len(b"<ceb:guid>") + 4
        add("comment-in-signed-text", data[:at] + b"<!---->" + data[at:], ACCEPTED)
        data = to_bytes(self.signed(msg_type))
        add(
            "comment-before-signature",
            data.replace(b"<ds:Signature", b"<!-- x --><ds:Signature", 1),
            ACCEPTED,
        )
        # References that point elsewhere, duplicate IDs.
        for slug, uri in (("uri-id", "#id1"), ("uri-absent", None), ("uri-external", f"{self.canary}/ref"),
                          ("uri-xpointer", "#xpointer(/)"), ("uri-file", "file:///etc/passwd")):  # fmt: skip
            root = self.signed(msg_type)
            ref = root.find(f".//{{{DS}}}Reference")
            if uri is None:
                del ref.attrib["URI"]
            else:
                ref.set("URI", uri)
            if slug == "uri-id":
                root[0].set("Id", "id1")
            add(slug, root, bad_sig, "URI")
        root = self.signed(msg_type)
        root[0].set("Id", "dup")
        if len(root) > 2:
            root[1].set("Id", "dup")
        root.find(f".//{{{DS}}}Reference").set("URI", "#dup")
        add("duplicate-ids", root, bad_sig, "URI")
        # Transforms and algorithms other than the profile's.
        for slug, algo in (
            ("xslt", "http://www.w3.org/TR/1999/REC-xslt-19991116"),
            ("xpath", "http://www.w3.org/TR/1999/REC-xpath-19991116"),
            ("exc-c14n", "http://www.w3.org/2001/10/xml-exc-c14n#"),
            ("c14n11", "http://www.w3.org/2006/12/xml-c14n11"),
            ("base64-transform", "http://www.w3.org/2000/09/xmldsig#base64"),
        ):
            root = self.signed(msg_type)
            t = root.find(f".//{{{DS}}}Transform")
            t.set("Algorithm", algo)
            add(f"transform-{slug}", root, bad_sig, "transform")
        root = self.signed(msg_type)
        t = root.find(f".//{{{DS}}}Transform")
        xsl = etree.SubElement(t, "{http://www.w3.org/1999/XSL/Transform}stylesheet")
        etree.SubElement(
            xsl, "{http://www.w3.org/1999/XSL/Transform}include", href=f"{self.canary}/x.xsl"
        )
        add("transform-with-stylesheet", root, bad_sig)
        root = self.signed(msg_type)
        root.find(f".//{{{DS}}}SignatureMethod").set(
            "Algorithm", "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
        )
        add("hmac", root, bad_sig)
        root = self.signed(msg_type)
        root.find(f".//{{{DS}}}SignatureMethod").set(
            "Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        )
        add("sha1", root, bad_sig)
        root = self.signed(msg_type)
        root.find(f".//{{{DS}}}CanonicalizationMethod").set(
            "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
        )
        add("c14n-with-comments", root, bad_sig)
        # KeyInfo that points outside: the hub uses only registered certificates, fetches nothing.
        for slug, build in (
            ("retrieval-method", lambda ki: etree.SubElement(ki, f"{{{DS}}}RetrievalMethod", URI=f"{self.canary}/cert")),
            ("retrieval-file", lambda ki: etree.SubElement(ki, f"{{{DS}}}RetrievalMethod", URI="file:///etc/passwd")),
            ("x509-url", lambda ki: etree.SubElement(etree.SubElement(ki, f"{{{DS}}}X509Data"), f"{{{DS}}}X509URL").__setattr__("text", f"{self.canary}/c.pem")),
            ("stranger-cert-in-keyinfo", lambda ki: ki.find(f".//{{{DS}}}X509Certificate").__setattr__(
                "text", base64.b64encode(self.keys["stranger"].cert.public_bytes(_der())).decode())),
        ):  # fmt: skip
            root = self.signed(msg_type)
            build(root.find(f".//{{{DS}}}KeyInfo"))
            # Accepted (KeyInfo is only a hint), refused, or outside the profile's XSD: never fetched.
            add(slug, root, {ACCEPTED, bad_sig, codes.SCHEMA_ERROR})
        root = self.signed(msg_type)
        root.find(f".//{{{DS}}}SignatureValue").text = "!!!not base64!!!"
        add("bad-base64", root, bad_sig, "base64")
        root = self.signed(msg_type)
        root.find(f".//{{{DS}}}SignatureValue").text = base64.b64encode(b"\x00" * 256).decode()
        add("zero-signature", root, bad_sig)

    def odd_names(self) -> None:
        names: list[str | bytes] = [
            "..",  # a regular file may be called "..xml" but not ".."; the nearest ones:
            "..xml",
            "...",
            "..%2f..%2fetc%2fpasswd.xml",
            "..\\..\\..\\windows\\system32\\x.xml",
            "~root.xml",
            "-rf.xml",
            " leading space.xml",
            "trailing space.xml ",
            "new\nline.xml",
            "carriage\rreturn.xml",
            "tab\tname.xml",
            "etc:passwd.xml",
            "nul-looking\\0.xml",
            "CON",
            '*?<>|".xml',
            "订单-中文.xml",
            "emoji-\U0001f600.xml",
            "a" * 250 + ".xml",
            "--double--dash--.xml",
            "$(touch pwned).xml",
            "`id`.xml",
            b"non-utf8-\xff\xfe.xml",
            b"latin1-caf\xe9.xml",
            b"\xc0\xaf..\xc0\xafetc.xml",
        ]
        for i, name in enumerate(names):
            if name == "..":
                continue
            # A leading dot makes a temp name (design §7): left alone, as the partner may still write.
            expect = IGNORED if str(name).startswith(".") else ACCEPTED
            self.add(f"name{i}", to_bytes(self.signed()), expect, name=name, group="odd-name")
        # Temp names are never claimed (design §7): they stay where the partner put them.
        for i, name in enumerate((".hidden.xml", "half.xml.part", "upload.xml.tmp")):
            self.add(f"temp{i}", b"<partial", IGNORED, name=name, group="temp-name")
        # A signed message whose guid is a path: the outbound names use it.
        for i, guid in enumerate(
            ("../../../../../../tmp/cebhub-escape", "/etc/cebhub-escape", "..")
        ):
            root = self.fresh()
            root.set("guid", guid)
            self.sign(root, "CEB311Message")
            self.add(f"guid-path-{i}", to_bytes(root), codes.SCHEMA_ERROR, group="guid-path")

    def envelopes(self) -> None:
        payload = to_bytes(self.signed())
        env = dxp_envelope(payload, sender_id="DXPWRONG00000001", receiver_id="DXPNOBODY")
        self.add("envelope-wrong-ids", env, {codes.ADDRESS_MISMATCH, codes.RECEIVER_UNKNOWN},
                 group="envelope")  # fmt: skip
        raw = env.replace(b"<dxp:Data>", b"<dxp:Data>!!!", 1)
        self.add("envelope-bad-base64", raw, {codes.FORMAT_ERROR, codes.SCHEMA_ERROR,
                 codes.ADDRESS_MISMATCH, codes.RECEIVER_UNKNOWN}, group="envelope")  # fmt: skip
        from hub.constants import IMPORT_DXP_ID

        inner = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
        env = dxp_envelope(inner, sender_id="DXPENT0000100001", receiver_id=IMPORT_DXP_ID,
                           msg_type="CEB311Message")  # fmt: skip
        self.add("envelope-xxe-payload", env, codes.FORMAT_ERROR, words="DOCTYPE", group="envelope")
        good = dxp_envelope(to_bytes(self.signed()), sender_id="DXPENT0000100001",
                            receiver_id=IMPORT_DXP_ID)  # fmt: skip
        self.add("envelope-valid", good, ACCEPTED, group="envelope")


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def build_corpus(keys, canary: str, *, big: bool = True) -> list[Case]:
    return Corpus(keys, canary).build(big=big)


Builder = Callable[[], list[Case]]

"""The DXP transport envelope (`DxpMsg`): unwrap what partners send, wrap what the hub sends."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from hub.constants import DXP_NS, dxp
from hub.errors import EnvelopeError


@dataclass(frozen=True)
class DxpInfo:
    """The routing header of a received envelope."""

    cop_msg_id: str
    sender_id: str
    receiver_ids: tuple[str, ...]
    msg_type: str
    file_name: str | None


def is_envelope(root: etree._Element) -> bool:
    return root.tag == dxp("DxpMsg")


def _text(parent: etree._Element, path: str) -> str:
    found = parent.find(path, namespaces={"dxp": DXP_NS})
    return (found.text or "").strip() if found is not None else ""


def read_envelope(root: etree._Element) -> tuple[DxpInfo, bytes]:
    """The header and the decoded payload bytes of a (schema-valid) DxpMsg."""
    info = DxpInfo(
        cop_msg_id=_text(root, "dxp:TransInfo/dxp:CopMsgId"),
        sender_id=_text(root, "dxp:TransInfo/dxp:SenderId"),
        receiver_ids=tuple(
            (el.text or "").strip()
            for el in root.iterfind("dxp:TransInfo/dxp:ReceiverIds/dxp:ReceiverId", {"dxp": DXP_NS})
        ),
        msg_type=_text(root, "dxp:TransInfo/dxp:MsgType"),
        file_name=_text(root, "dxp:AddInfo/dxp:FileName") or None,
    )
    data = _text(root, "dxp:Data")
    try:
        payload = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("Data is not valid base64", path="DxpMsg/Data") from None
    if not payload:
        raise EnvelopeError("Data is empty", path="DxpMsg/Data")
    return info, payload


def build_envelope(
    payload: bytes,
    *,
    sender_id: str,
    receiver_id: str,
    msg_type: str,
    cop_msg_id: str | None = None,
    file_name: str | None = None,
    now: datetime | None = None,
) -> etree._Element:
    """A DxpMsg carrying `payload`; the caller signs and serialises it."""
    root = etree.Element(dxp("DxpMsg"), nsmap={"dxp": DXP_NS}, ver="1.0")
    trans = etree.SubElement(root, dxp("TransInfo"))
    etree.SubElement(trans, dxp("CopMsgId")).text = cop_msg_id or str(uuid.uuid4()).upper()
    etree.SubElement(trans, dxp("SenderId")).text = sender_id
    receivers = etree.SubElement(trans, dxp("ReceiverIds"))
    etree.SubElement(receivers, dxp("ReceiverId")).text = receiver_id
    stamp = (now or datetime.now()).strftime("%Y-%m-%dT%H:%M:%S")
    etree.SubElement(trans, dxp("CreatTime")).text = stamp
    etree.SubElement(trans, dxp("MsgType")).text = msg_type
    etree.SubElement(root, dxp("Data")).text = base64.b64encode(payload).decode("ascii")
    if file_name:
        add = etree.SubElement(root, dxp("AddInfo"))
        etree.SubElement(add, dxp("FileName")).text = file_name
    return root

"""Wrap a generated message in a DxpMsg envelope, as a partner's own DXP client would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from lxml import etree

from hub import clock as hub_clock
from hub import envelope
from hub.generator.messages import Signer, to_bytes


def dxp_envelope(
    payload: bytes,
    *,
    sender_id: str,
    receiver_id: str,
    msg_type: str | None = None,
    cop_msg_id: str | None = None,
    file_name: str | None = None,
    clock: Callable[[], datetime] | None = None,
    sign: Signer | None = None,
) -> bytes:
    """DxpMsg bytes whose Data is base64 of `payload` (spec §4.1).

    `msg_type` defaults to the payload's root name, as partners fill it in practice.
    """
    if msg_type is None:
        msg_type = etree.QName(etree.fromstring(payload)).localname
    root = envelope.build_envelope(
        payload,
        sender_id=sender_id,
        receiver_id=receiver_id,
        msg_type=msg_type,
        cop_msg_id=cop_msg_id,
        file_name=file_name,
        now=(clock or hub_clock.utcnow)().astimezone(hub_clock.CST),  # CreatTime in Beijing time
    )
    return to_bytes(sign(root) if sign else root)

"""The enterprises of a generated scenario: their customs codes, names and DXP ids."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Who sends a message; the value is the attribute prefix in `Parties`."""

    PLATFORM = "ebp"  # e-commerce platform: orders
    ECOMMERCE = "ebc"  # e-commerce enterprise: may send orders, cancellations, returns
    PAYMENT = "pay"  # payment enterprise: payment vouchers
    LOGISTICS = "logistics"  # logistics enterprise: waybills and their status
    AGENT = "agent"  # declaring agent: lists, cancellations, returns
    OPERATOR = "operator"  # operator of the customs-supervised site: warehouse entries


@dataclass(frozen=True)
class Parties:
    """Every enterprise code a purchase's messages name, and who transmits them."""

    ebp_code: str
    ebp_name: str
    ebc_code: str
    ebc_name: str
    pay_code: str
    pay_name: str
    logistics_code: str
    logistics_name: str
    agent_code: str
    agent_name: str
    area_code: str  # bonded warehouse enterprise (1210 lists)
    area_name: str
    operator_code: str  # supervised-site operator (711 entries)
    operator_name: str
    customs_code: str  # 4-digit customs district accepting declarations
    port_code: str  # 4-digit customs district of the port of entry
    ems_no: str  # bonded account book (1210 lists)
    assure_code: str  # whose guarantee is debited; spec: the platform, ebc or logistics company
    ebp_dxp_id: str
    ebc_dxp_id: str
    pay_dxp_id: str
    logistics_dxp_id: str
    agent_dxp_id: str
    operator_dxp_id: str
    # A third-party transmitter for every message; None: each sender transmits its own.
    cop_code: str | None = None
    cop_name: str | None = None
    cop_dxp_id: str | None = None

    def code(self, role: Role) -> str:
        return getattr(self, f"{role.value}_code")

    def name(self, role: Role) -> str:
        return getattr(self, f"{role.value}_name")

    def dxp_id(self, role: Role) -> str:
        return getattr(self, f"{role.value}_dxp_id")

    def transmitter(self, role: Role) -> tuple[str, str, str]:
        """BaseTransfer's copCode, copName and dxpId for a message `role` sends."""
        return (
            self.cop_code or self.code(role),
            self.cop_name or self.name(role),
            self.cop_dxp_id or self.dxp_id(role),
        )


DEMO_PARTIES = Parties(
    ebp_code="4401960001",
    ebp_name="云购全球电子商务(广州)有限公司",
    ebc_code="4401960002",
    ebc_name="环球优选国际贸易(广州)有限公司",
    pay_code="3120960003",
    pay_name="汇通支付科技有限公司",
    logistics_code="4401980004",
    logistics_name="南沙速达跨境物流有限公司",
    agent_code="4401980005",
    agent_name="广州诚信报关有限公司",
    area_code="4401640006",
    area_name="广州南沙保税港区仓储有限公司",
    operator_code="4401980007",
    operator_name="白云机场跨境电商监管中心有限公司",
    customs_code="5141",
    port_code="5141",
    ems_no="T5141W000018",
    assure_code="4401960002",
    ebp_dxp_id="DXPENT0000100001",
    ebc_dxp_id="DXPENT0000100002",
    pay_dxp_id="DXPENT0000100003",
    logistics_dxp_id="DXPENT0000100004",
    agent_dxp_id="DXPENT0000100005",
    operator_dxp_id="DXPENT0000100007",
)

"""The workspace configuration, `config/hub.toml`, read into typed settings."""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.constants import IMPORT_DXP_ID
from hub.errors import ConfigError
from hub.workspace import Workspace

PARTNER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # safe as a folder name
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # larger files are refused unread
DEFAULT_MAX_DEPTH = 40  # CEB messages nest 5 deep; anything far deeper is hostile
DEFAULT_BATCH_SIZE = 100  # messages per transaction (group commit)


class Role(StrEnum):
    """What a partner is to the hub."""

    PLATFORM = "platform"  # e-commerce platform / enterprise: sends orders
    PAYMENT = "payment"  # payment company: sends payment vouchers
    LOGISTICS = "logistics"  # logistics company: sends waybills and their status
    AGENT = "agent"  # declaring agent: sends lists, cancellations, refunds
    OPERATOR = "operator"  # supervised-site operator: sends warehouse entries
    CUSTOMS = "customs"  # customs endpoint: receives declarations, sends decisions
    INSPECTION = "inspection"  # inspection endpoint: likewise


class SignaturePolicy(StrEnum):
    """Whether a partner's messages must carry a verifying signature."""

    REQUIRED = "required"  # unsigned or badly signed messages are rejected
    OPTIONAL = "optional"  # unsigned accepted; a signature that is there must verify
    OFF = "off"  # signatures are not checked (interop fixtures only; never the default)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SftpSettings(_Strict):
    """Where and how the hub reaches a partner's SFTP server (adapters.sftp.settings_for_partner
    turns it, with the partner's `ready` rule, into the adapter's SftpSettings)."""

    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    key_file: str  # our private key for that server; workspace-relative or absolute
    known_hosts: str  # the only host keys trusted for it (never added to)
    remote_dir: str = "outbox"  # the partner's files for the hub
    processed_dir: str = "processed"  # relative to remote_dir unless absolute
    after_pickup: Literal["move", "delete"] = "move"
    remote_inbox: str = "inbox"  # where the hub pushes files for the partner
    poll_seconds: float = Field(30.0, gt=0)
    connect_timeout: float = Field(15.0, gt=0)  # TCP connect, banner and authentication
    timeout: float = Field(60.0, gt=0)  # one SFTP request may stall this long


class AmqpSettings(_Strict):
    """A partner reached over an AMQP broker."""

    url: str
    queue: str | None = None  # inbound: consumed by the hub
    exchange: str = ""  # outbound: published to by the hub
    routing_key: str | None = None
    prefetch: int = Field(200, ge=1, le=65535)  # unacked messages at a time; >= hub.batch_size
    declare: bool = False  # declare the inbound queue (durable) instead of requiring it


class Partner(_Strict):
    """An enterprise or endpoint the hub exchanges messages with."""

    id: Annotated[str, Field(pattern=PARTNER_ID_PATTERN)]
    name: str = ""
    role: Role
    codes: list[str] = Field(default_factory=list)  # customs codes it may act as
    dxp_id: str | None = None
    envelope: Literal["none", "dxp"] = "none"
    transport: Literal["directory", "sftp", "amqp", "pull"] = "directory"  # pull: HTTP feed
    certificates: list[str] = Field(default_factory=list)  # PEM files, workspace-relative
    signature: SignaturePolicy = SignaturePolicy.REQUIRED
    signature_by_type: dict[str, SignaturePolicy] = Field(default_factory=dict)
    allow_sha1: bool = False  # legacy RSA-SHA1 cards
    ready: Literal["immediate", "done-file", "stable-size"] = "immediate"
    sftp: SftpSettings | None = None
    amqp: AmqpSettings | None = None

    def signature_policy(self, msg_type: str) -> SignaturePolicy:
        return self.signature_by_type.get(msg_type, self.signature)


class HubSettings(_Strict):
    """The hub itself."""

    name: str = "cebhub"
    dxp_id: str = IMPORT_DXP_ID  # the DXP id the hub answers as
    database_url: str | None = None  # default: SQLite file cebhub.db in the workspace
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=5000)
    poll_seconds: float = Field(1.0, gt=0)  # periodic rescan of the inbox folders
    archive_days: int = 90  # archived originals older than this are removed
    # Processes that take (claim) and check (parse, verify, validate) the next batches while
    # this one is recorded, one batch each. None: one on a machine of two or more cores when
    # this hub is the only worker of `cebhub run`, else none (0: always check in the hub's
    # own process).
    check_processes: int | None = Field(None, ge=0, le=16)
    # A process that writes the outbox files of large delivery rounds. None: as above.
    write_process: bool | None = None

    def checkers(self) -> int:
        if self.check_processes is not None:
            return self.check_processes
        return 1 if _helpers_pay_off() else 0

    def file_writer(self) -> bool:
        return self.write_process if self.write_process is not None else _helpers_pay_off()


def _helpers_pay_off() -> bool:
    """Helper processes use a second core: there is one, and no other worker of ours uses it."""
    from hub.workers import WORKER_ENV

    return (os.cpu_count() or 1) >= 2 and WORKER_ENV not in os.environ


class ConsoleSettings(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080


class DeliverySettings(_Strict):
    max_attempts: int = Field(10, ge=1)  # then the delivery is dead-lettered
    backoff_seconds: float = Field(1.0, gt=0)  # first retry delay; doubles each attempt
    backoff_cap_seconds: float = Field(300.0, gt=0)


class RiskSettings(_Strict):
    """Risk rules that send an accepted list to manual review (design §6)."""

    hs_prefixes: list[str] = Field(default_factory=list)  # e.g. ["3304"]: any line's gcode
    value_above: Decimal | None = None  # dutiable value above this, CNY
    first_purchase: bool = False  # a buyer's first list
    sampling_rate: float = Field(0.0, ge=0, le=1)  # share of lists picked at random
    sampling_seed: int = 0  # the draw is fixed per (seed, preNo), so tests can rely on it


class ClearanceSettings(_Strict):
    """The clearance engine: waits, limits, tax table and risk rules."""

    wait_seconds: float = Field(3600.0, ge=0)  # for a missing order/payment/waybill, then reason 2
    tax_file: str = "config/tax_rates.csv"  # workspace-relative; the repository's copy if absent
    single_limit: Decimal = Decimal(5000)  # CNY per transaction (-621005)
    annual_limit: Decimal = Decimal(26000)  # CNY per buyer per year (-621018)
    refund_days: int = 30  # a refund (625) must come within this many days of release
    risk: RiskSettings = Field(default_factory=RiskSettings)


DEFAULT_ROUTES: dict[str, list[str]] = {
    # declarations go to the customs and inspection endpoints (by role or partner id)
    "CEB311Message": ["customs", "inspection"],
    "CEB411Message": ["customs", "inspection"],
    "CEB511Message": ["customs", "inspection"],
    "CEB513Message": ["customs"],
    "CEB621Message": ["customs", "inspection"],
    "CEB623Message": ["customs"],
    "CEB625Message": ["customs"],
    "CEB711Message": ["customs"],
}


class Settings(_Strict):
    """Everything in hub.toml."""

    hub: HubSettings = Field(default_factory=HubSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    partners: dict[str, Partner] = Field(default_factory=dict)
    routes: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    clearance: ClearanceSettings = Field(default_factory=ClearanceSettings)

    @field_validator("partners", mode="before")
    @classmethod
    def _ids_from_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"id": k, **v} if isinstance(v, dict) else v) for k, v in value.items()}
        return value

    def partner(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    def partners_with_role(self, role: Role) -> list[Partner]:
        return [p for p in self.partners.values() if p.role == role]

    def route_targets(self, msg_type: str) -> list[Partner]:
        """Partners a message of this type is routed to: entries are partner ids or roles."""
        targets: dict[str, Partner] = {}
        for entry in self.routes.get(msg_type, []):
            if entry in self.partners:
                targets[entry] = self.partners[entry]
                continue
            for p in self.partners.values():
                if p.role.value == entry:
                    targets[p.id] = p
        return list(targets.values())


def _describe(file: Path, error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        key = ".".join(str(part) for part in e["loc"]) or "(top level)"
        got = e.get("input")
        got_text = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{file}: {key}: {e['msg']}{got_text}")
    return "\n".join(lines)


def parse_settings(data: dict[str, Any], *, file: Path) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc)) from None


def load(ws: Workspace) -> Settings:
    """Read and check the workspace's hub.toml; a problem names the file and key."""
    file = ws.config_file
    if not file.is_file():
        raise ConfigError(f"{file}: not found; run `cebhub init {ws.root}` first")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return parse_settings(data, file=file)


def default_document(dxp_id: str = IMPORT_DXP_ID) -> tomlkit.TOMLDocument:
    """The hub.toml written by `cebhub init`."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("cebhub workspace configuration; see docs/ and `cebhub --help`."))
    hub = tomlkit.table()
    hub.add("name", "cebhub")
    hub.add("dxp_id", dxp_id)
    hub.add(
        tomlkit.comment('database_url = "postgresql+psycopg://user@host/db"  # default: SQLite')
    )
    hub.add("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)
    hub.add("batch_size", DEFAULT_BATCH_SIZE)
    doc.add("hub", hub)
    console = tomlkit.table()
    console.add("host", "127.0.0.1")
    console.add("port", 8080)
    doc.add("console", console)
    delivery = tomlkit.table()
    delivery.add("max_attempts", 10)
    delivery.add("backoff_seconds", 1.0)
    delivery.add("backoff_cap_seconds", 300.0)
    doc.add("delivery", delivery)
    routes = tomlkit.table()
    for msg_type, targets in DEFAULT_ROUTES.items():
        routes.add(msg_type, targets)
    doc.add("routes", routes)
    doc.add("partners", tomlkit.table(is_super_table=True))
    return doc


def read_document(ws: Workspace) -> tomlkit.TOMLDocument:
    """hub.toml as an editable document that keeps the operator's comments."""
    return tomlkit.parse(ws.config_file.read_text(encoding="utf-8"))


def write_document(ws: Workspace, doc: tomlkit.TOMLDocument) -> Settings:
    """Check, then atomically replace hub.toml; returns the new settings."""
    text = tomlkit.dumps(doc)
    settings = parse_settings(tomllib.loads(text), file=ws.config_file)
    tmp = ws.config_file.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(ws.config_file)
    return settings

"""SFTP push as a delivery Sink: upload under a temp name, rename on the partner's server."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from adapters.base import AdapterStatus
from adapters.sftp import SftpError, SftpSession, SftpSettings, upload
from hub.delivery.worker import TransportError
from hub.workspace import Workspace

log = logging.getLogger(__name__)


class SftpSink:
    """Delivers one partner's files into its remote inbox; one session per delivery round."""

    def __init__(self, partner_id: str, settings: SftpSettings) -> None:
        self.partner_id = partner_id
        self.settings = settings
        self.name = f"sftp-push:{partner_id}"
        self._session: SftpSession | None = None
        self._status = AdapterStatus(self.name, partner_id, "sftp", "out")

    @property
    def last_error(self) -> str | None:
        return self._status.last_error

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> None:
        """On the server once this returns (renamed into place); raises TransportError."""
        try:
            upload(self._open(), self.settings, file_name, body)
        except SftpError as exc:
            self._status.update(False, str(exc))
            if self._session is not None and not self._session.is_alive():
                self.close()
            raise TransportError(str(exc), retryable=exc.retryable) from exc
        except ValueError as exc:  # a name that cannot be a remote file name: never retried
            self._status.update(False, str(exc))
            raise TransportError(f"{self.settings.address}: {exc}", retryable=False) from exc
        self._status.update(True, None)

    def _open(self) -> SftpSession:
        if self._session is not None and self._session.is_alive():
            return self._session
        self.close()
        session = SftpSession(self.settings)
        session.open()
        self._session = session
        return session

    def flush(self) -> None:
        """Every upload was renamed into place already; end the round's session."""
        self.close()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def status(self) -> list[AdapterStatus]:
        return [self._status] if self._status.up is not None else []


def sinks_for(ws: Workspace, partners: Iterable) -> dict[str, SftpSink]:
    """A delivery Sink per SFTP partner (config Partner objects), for deliver_due."""
    from adapters.sftp import settings_for_partner

    return {
        p.id: SftpSink(p.id, settings_for_partner(p, ws))
        for p in partners
        if p.transport == "sftp" and p.sftp is not None
    }

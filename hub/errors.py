"""Errors of the pipeline; each carries the returnStatus of the receipt it causes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import codes

if TYPE_CHECKING:
    from hub.messages.types import MessageType


class HubError(Exception):
    """Base of every error that ends a message with a receipt."""

    return_status: str = codes.SYSTEM_ERROR

    def __init__(self, info: str, *, path: str | None = None) -> None:
        super().__init__(info)
        self.info = info
        self.path = path

    @property
    def return_info(self) -> str:
        return f"{self.path}: {self.info}" if self.path else self.info

    def __reduce__(self):
        # Subclasses take other arguments than they pass on; rebuild from the attributes, so
        # that an error found in the checker process reaches the hub exactly as it was raised.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[HubError], args: tuple, state: dict) -> HubError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class FormatError(HubError):
    """The file is not a CEB message we can read; answered with a CEB900."""

    return_status = codes.FORMAT_ERROR


class SchemaError(FormatError):
    """The message breaks our XSD; `path` names the failing element."""

    return_status = codes.SCHEMA_ERROR


class OversizeError(FormatError):
    """The file or one of its parts is over a configured limit."""

    return_status = codes.OTHER_FORMAT_ERROR


class EnvelopeError(FormatError):
    """The DXP envelope is wrong: sender, receiver or payload."""

    def __init__(self, info: str, *, return_status: str = codes.FORMAT_ERROR, path=None) -> None:
        super().__init__(info, path=path)
        self.return_status = return_status


class MessageRejected(HubError):
    """A readable message rejected as a whole; every record gets the type's receipt."""

    def __init__(self, return_status: str, info: str, *, path: str | None = None) -> None:
        super().__init__(info, path=path)
        self.return_status = return_status


class SignatureError(MessageRejected):
    """The signature is missing, wrong or not by the sending partner."""

    def __init__(self, msg_type: MessageType, info: str, *, digest: bool = False) -> None:
        code = msg_type.codes.digest_mismatch if digest else msg_type.codes.signature_invalid
        super().__init__(code, info)


class NotPermitted(MessageRejected):
    """The declarant or transmitter code is not one of the sending partner's codes."""

    def __init__(self, msg_type: MessageType, info: str) -> None:
        super().__init__(msg_type.codes.not_permitted, info)


class RecordRejected(HubError):
    """One record of a message fails a business rule; the others go on."""

    def __init__(self, return_status: str, info: str) -> None:
        super().__init__(info)
        self.return_status = return_status


class ConfigError(Exception):
    """The workspace configuration is wrong: names the file, the key and what was expected."""

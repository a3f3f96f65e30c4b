"""The exceptions smpflash raises: one tree that mirrors smpflash's error kinds.

    Error                          anything smpflash reports (``kind`` names it finer)
    ├── DeviceError                the device answered with an error code: ``group``, ``rc``, ``name``
    ├── DfuError                   an update that did not happen or did not take
    │   ├── Refused                refused before anything was written: ``refusal``
    │   └── NotApplied             written, but the device does not run it: ``verdict``
    ├── ImageError                 the firmware file is unreadable or not a valid image
    ├── ConnectionError            the link could not be opened, or went away (also builtins.ConnectionError)
    ├── Timeout                    no answer in time, or the upload stalled (also builtins.TimeoutError)
    ├── ProtocolError              an answer that breaks the SMP protocol
    └── UploadError                the device received something other than what was sent

Bad arguments raise ``ValueError``; Ctrl-C raises ``KeyboardInterrupt`` after the work stopped.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

__all__ = [
    "Error",
    "DeviceError",
    "DfuError",
    "Refused",
    "NotApplied",
    "ImageError",
    "ConnectionError",
    "Timeout",
    "ProtocolError",
    "UploadError",
]


class Error(Exception):
    """Anything smpflash reports. ``kind`` is a stable name for the cause (``"device"``,
    ``"link_lost"``, ``"upload_stalled"``, …); ``str(e)`` is the sentence the CLI prints."""

    kind: str
    details: dict[str, Any]

    def __init__(self, message: str, kind: str = "error", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "kind": self.kind, "message": str(self), **self.details}


class DeviceError(Error):
    """The device answered with an error code.

    ``rc`` is the code; ``group`` the MCUmgr group whose codes it is (``None`` for the SMP-level
    ``MGMT_ERR_*`` codes of SMP v1 answers); ``name`` Zephyr's name for it
    (``IMG_MGMT_ERR_NO_IMAGE``); ``description`` a plain description; ``reason`` the text the
    device may add."""

    @property
    def rc(self) -> int:
        return int(self.details["rc"])

    @property
    def group(self) -> int | None:
        return self.details.get("group")

    @property
    def name(self) -> str | None:
        return self.details.get("name")

    @property
    def description(self) -> str | None:
        return self.details.get("description")

    @property
    def reason(self) -> str | None:
        return self.details.get("reason")


class DfuError(Error):
    """An update that did not happen (:class:`Refused`) or did not take (:class:`NotApplied`)."""


class Refused(DfuError):
    """A pre-flight check refused the update before anything was written. ``refusal`` names the
    check (``"too_large"``, ``"no_such_image"``, ``"downgrade"``); ``details`` has its fields."""

    @property
    def refusal(self) -> str:
        return str(self.details["refusal"])


class NotApplied(DfuError):
    """The device did not end up running (or holding) the new image. ``verdict`` names why
    (``"not_active"``: it ran and was reverted, ``"rejected_at_boot"``, ``"still_pending"``,
    ``"did_not_come_back"``, …); ``details`` has the verdict's fields (image, slot, running
    version)."""

    @property
    def verdict(self) -> str:
        return str(self.details["verdict"])


class ImageError(Error):
    """The firmware file cannot be read (``kind == "io"``) or is not a valid MCUboot image,
    HEX file or DFU zip (``kind == "invalid"``)."""


class ConnectionError(Error, builtins.ConnectionError):
    """The link could not be opened or went away. ``kind``: ``no_adapter``,
    ``pairing_required``, ``not_found``, ``open``, ``link_lost``, ``io``, ``unsupported``."""


class Timeout(Error, builtins.TimeoutError):
    """No answer in time (``kind == "timeout"``), or the device stopped taking upload data
    (``kind == "upload_stalled"``)."""


class ProtocolError(Error):
    """An answer that breaks the SMP protocol (a malformed frame or body, a wrong answer)."""


class UploadError(Error):
    """The device received the whole image but its hash differs from what was sent."""


_CLASSES: dict[str, type[Error]] = {
    cls.__name__: cls
    for cls in (Error, DeviceError, DfuError, Refused, NotApplied, ImageError, ConnectionError, Timeout,
                ProtocolError, UploadError)
}


def _flatten(cls: type[Error], attrs: dict[str, Any]) -> dict[str, Any]:
    # The verdict and the refusal come as tagged documents; their fields become details.
    if cls is NotApplied and isinstance(attrs.get("verdict"), dict):
        return dict(attrs["verdict"])
    if cls is Refused and isinstance(attrs.get("refusal"), dict):
        return dict(attrs["refusal"])
    return attrs


def _from_native(class_name: str, kind: str, message: str, attrs_json: str) -> Error:
    """Called by the native module to build the exception for one library error."""
    cls = _CLASSES.get(class_name, Error)
    return cls(message, kind, _flatten(cls, json.loads(attrs_json)))

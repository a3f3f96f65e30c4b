"""What smpflash returns: plain objects with attributes and ``to_dict()``, built from the same
JSON documents the CLI prints with ``--json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ImageState", "Limits", "UploadReport", "DfuReport", "Event", "ShellResult", "FileReport", "FileHash",
           "Group", "TaskStat", "MemPool"]


@dataclass(frozen=True)
class ImageState:
    """One slot of one image, as the device's image state reports it. ``hash`` is hex."""

    image: int
    slot: int
    version: str
    hash: str | None
    active: bool
    confirmed: bool
    pending: bool
    permanent: bool
    bootable: bool

    @classmethod
    def _from(cls, d: dict[str, Any]) -> ImageState:
        return cls(
            image=d.get("image", 0),
            slot=d["slot"],
            version=d.get("version", ""),
            hash=d.get("hash"),
            active=d.get("active", False),
            confirmed=d.get("confirmed", False),
            pending=d.get("pending", False),
            permanent=d.get("permanent", False),
            bootable=d.get("bootable", False),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Limits:
    """The device's SMP buffers: the largest frame it takes and how many it holds at once."""

    buf_size: int
    buf_count: int
    reported: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShellResult:
    """What a shell command printed, and its return value (0 success, a negative errno)."""

    output: str
    ret: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileReport:
    """What a file transfer did: the device's path, the bytes moved, how long it took, and how
    the result was checked (``verified``: the hash or checksum kind and value, ``None`` when
    the device has none). ``attempts`` is 2 when the first transfer did not match the device's
    hash and the file went again one request at a time."""

    remote: str
    bytes: int
    seconds: float
    verified: dict[str, Any] | None
    attempts: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> FileReport:
        return cls(remote=d["remote"], bytes=d["bytes"], seconds=d.get("seconds", 0.0),
                   verified=d.get("verified"), attempts=d.get("attempts", 1), raw=d)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class FileHash:
    """The device's hash or checksum of one of its files: ``type`` (``sha256``, ``crc32``),
    the bytes it covered, and ``output`` in hex."""

    type: str
    len: int
    output: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScanResult:
    """A BLE device in range that advertises the SMP service (:func:`smpflash.scan`): its name
    when it has one, its address (the OS's device id on macOS, where addresses are hidden) and
    its last signal strength in dBm. ``address`` or ``name`` is what ``connect(ble=...)``
    takes."""

    name: str | None
    address: str
    rssi: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Group:
    """One management group of a device: its id, its name (the device's, or smpflash's for a
    known id) and, when the device says, how many command ids it has."""

    group: int
    name: str
    handlers: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskStat:
    """One thread's statistics (``os tasks``); ``stkuse``/``stksiz`` are ``None`` when the
    device does not report stacks."""

    prio: int
    tid: int
    state: int
    stkuse: int | None
    stksiz: int | None
    cswcnt: int
    runtime: int

    @classmethod
    def _from(cls, d: dict[str, Any]) -> TaskStat:
        return cls(prio=d["prio"], tid=d["tid"], state=d["state"], stkuse=d.get("stkuse"),
                   stksiz=d.get("stksiz"), cswcnt=d.get("cswcnt", 0), runtime=d.get("runtime", 0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MemPool:
    """One memory pool's statistics (``os mempool``): block size, blocks, free blocks and the
    fewest free blocks seen."""

    blksiz: int
    nblks: int
    nfree: int
    min: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UploadReport:
    """What one image's upload did."""

    image: int
    bytes: int
    seconds: float
    chunk: int
    window: int
    retransmits: int
    resent_bytes: int
    reconnects: int
    resumed_at: int
    start: dict[str, Any]
    partial_accepts: int
    matched: bool | None

    @classmethod
    def _from(cls, d: dict[str, Any]) -> UploadReport:
        fields: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DfuReport:
    """What a DFU did: the mode and route taken, image state before and after, one report per
    uploaded image, the images skipped (and why), whether the device was reset, and the time."""

    mode: str
    route: str
    before: list[ImageState]
    after: list[ImageState]
    uploads: list[UploadReport]
    skipped: list[dict[str, Any]]
    reset: bool
    seconds: float

    @classmethod
    def _from_json(cls, text: str) -> DfuReport:
        d = json.loads(text)
        return cls(
            mode=d["mode"],
            route=d["route"],
            before=[ImageState._from(s) for s in d["before"]],
            after=[ImageState._from(s) for s in d["after"]],
            uploads=[UploadReport._from(u) for u in d["uploads"]],
            skipped=list(d["skipped"]),
            reset=d["reset"],
            seconds=d["seconds"],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """One progress event of an upload or a DFU. ``kind`` is ``step``, ``upload_started``,
    ``progress``, ``upload_finished``, ``reconnecting``, ``restarted`` or ``note``; its fields are
    attributes (``event.acked``, ``event.total`` for ``progress``); ``message`` is the sentence
    the CLI prints for it, where it prints one."""

    kind: str
    message: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _from_json(cls, text: str) -> Event:
        d = json.loads(text)
        kind = d.pop("event")
        message = d.pop("message", None)
        return cls(kind=kind, message=message, fields=d)

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(f"{self.kind} event has no field {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **({"message": self.message} if self.message else {}), **self.fields}

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.kind == "progress":
            return f"image {self.fields['image']}: {self.fields['acked']}/{self.fields['total']} bytes"
        return f"{self.kind} {self.fields}"

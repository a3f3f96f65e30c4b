"""smpflash for Python: firmware updates for MCUboot/Zephyr devices over SMP (MCUmgr).

The same engine as the ``smpflash`` command: pipelined, resumable, verified uploads, a DFU that
inspects, plans, marks, resets, checks and confirms, and says why when an update does not take.

    import smpflash

    with smpflash.connect(ble="Zephyr Heartrate") as dev:        # or serial=, udp=, sim=
        report = dev.dfu("build/dfu_application.zip", progress=print)
        print(report.after)

    async with await smpflash.AsyncDevice.connect(udp="192.0.2.10") as dev:
        await dev.dfu("app.signed.bin")

    with smpflash.VirtualDevice(profile="nrf5340", udp="127.0.0.1:0", time_scale=0) as sim:
        smpflash.connect(udp=sim.udp_address).echo("hi")

Blocking calls release the GIL while they wait and stop on Ctrl-C (``KeyboardInterrupt``).
Errors are the exceptions of :mod:`smpflash.errors`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from typing import Any, Generic, TypeVar

from . import _native
from .errors import (
    ConnectionError,
    DeviceError,
    DfuError,
    Error,
    ImageError,
    NotApplied,
    ProtocolError,
    Refused,
    Timeout,
    UploadError,
)
from .results import (
    DfuReport,
    Event,
    FileHash,
    FileReport,
    Group,
    ImageState,
    Limits,
    MemPool,
    ScanResult,
    ShellResult,
    TaskStat,
    UploadReport,
)

__version__: str = _native.__version__

__all__ = [
    "connect",
    "scan",
    "scan_async",
    "Device",
    "AsyncDevice",
    "DfuRun",
    "VirtualDevice",
    "DfuReport",
    "Event",
    "ImageState",
    "Limits",
    "UploadReport",
    "ShellResult",
    "FileReport",
    "FileHash",
    "Group",
    "TaskStat",
    "MemPool",
    "ScanResult",
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

Progress = Callable[[Event], object]
PathLike = str | os.PathLike[str]


def _link(udp: str | None, serial: str | None, ble: str | None, sim: str | None) -> tuple[str, str]:
    given = [(name, value) for name, value in (("udp", udp), ("serial", serial), ("ble", ble), ("sim", sim))
             if value is not None]
    if len(given) != 1:
        raise ValueError("say how to reach the device with exactly one of udp=, serial=, ble= or sim=")
    return given[0]


def _open_args(udp: str | None, serial: str | None, ble: str | None, sim: str | None, *, baud: int,
               framing: str | None, line_delay: float | None, mtu: int | None, timeout: float,
               sim_link: str | None, sim_set: Iterable[str], sim_time_scale: float,
               sim_state: PathLike | None) -> dict[str, Any]:
    link, target = _link(udp, serial, ble, sim)
    return dict(
        link=link,
        target=target,
        baud=baud,
        framing=framing,
        line_delay_ms=None if line_delay is None else round(line_delay * 1000),
        mtu=mtu,
        timeout=timeout,
        sim_link=sim_link,
        sim_set=list(sim_set),
        sim_time_scale=sim_time_scale,
        sim_state=None if sim_state is None else os.fspath(sim_state),
    )


def _hash_bytes(hash: str | bytes) -> bytes:
    if isinstance(hash, bytes):
        return hash
    clean = "".join(ch for ch in hash if ch not in ":-_ ")
    try:
        return bytes.fromhex(clean)
    except ValueError:
        raise ValueError(f"{hash!r} is not a hex hash") from None


def _resolve(hash: str | bytes, state: list[ImageState]) -> bytes:
    """A full hash as given, or the one image hash on the device that starts with ``hash``
    (as the CLI's ``image test`` takes a prefix)."""
    raw = _hash_bytes(hash)
    if len(raw) == 32:
        return raw
    matches = {s.hash for s in state if s.hash and s.hash.startswith(raw.hex())}
    if len(matches) == 1:
        return bytes.fromhex(matches.pop())
    if not matches:
        raise ValueError(f"no image on the device has a hash starting with {raw.hex()}")
    raise ValueError(f"{raw.hex()} matches {len(matches)} images; give more digits")


def _images(text: str) -> list[ImageState]:
    import json

    return [ImageState._from(s) for s in json.loads(text)]


def _uploads(text: str) -> list[UploadReport]:
    import json

    return [UploadReport._from(u) for u in json.loads(text)]


def _limits(text: str) -> Limits:
    import json

    return Limits(**json.loads(text))


class Device:
    """One device, reached over one link. Every call blocks until the device answered, with the
    GIL released; Ctrl-C stops it. Use :func:`connect` to make one; close it (or use ``with``)
    so a BLE device is disconnected and advertises again."""

    def __init__(self, native: _native.NativeDevice) -> None:
        self._native = native

    @property
    def transport(self) -> str:
        """What the link is (``udp 127.0.0.1:1337``, …)."""
        return self._native.describe()

    def echo(self, text: str) -> str:
        """Asks the device to echo ``text``; returns what it sent back."""
        answer: str = self._native.echo(text, False)
        return answer

    def params(self) -> Limits:
        """The device's SMP buffers."""
        return _limits(self._native.params(False))

    def image_state(self) -> list[ImageState]:
        """The images on the device, one entry per slot."""
        return _images(self._native.image_state(False))

    def image_test(self, hash: str | bytes) -> list[ImageState]:
        """Marks the image with ``hash`` (hex, bytes, or an unambiguous prefix) to run once at
        the next boot; returns the new image state."""
        return _images(self._native.image_write(_resolve(hash, self.image_state()), False, False))

    def image_confirm(self, hash: str | bytes | None = None) -> list[ImageState]:
        """Makes the image with ``hash`` permanent, or without one confirms the running image."""
        raw = None if hash is None else _resolve(hash, self.image_state())
        return _images(self._native.image_write(raw, True, False))

    def image_erase(self, slot: int | None = None) -> None:
        """Erases a slot (the secondary without one)."""
        self._native.image_erase(slot, False)

    def reset(self, *, force: bool = False, boot_mode: int | None = None) -> None:
        """Resets the device (``boot_mode=1`` enters MCUboot's serial recovery where supported)."""
        self._native.reset(force, boot_mode, False)

    def upload(self, file: PathLike, *, window: int | None = None, chunk: int | None = None,
               progress: Progress | None = None) -> list[UploadReport]:
        """Uploads the file's images to their free slots: no marking, no reset."""
        return _uploads(self._native.upload(os.fspath(file), window, chunk, _callback(progress)))

    def dfu(self, file: PathLike, *, mode: str | None = None, force: bool = False, recovery: bool = False,
            window: int | None = None, chunk: int | None = None, progress: Progress | None = None) -> DfuReport:
        """Updates the device with ``file`` (a signed .bin or .hex, or an NCS dfu_application.zip):
        check, upload, verify, mark, reset, verify, confirm.

        ``mode``: ``test-and-confirm`` (one image's default), ``confirm-only`` (a multi-image
        package's default), ``test-only`` or ``upload-only``. ``progress`` is called with each
        :class:`Event` on this thread. Raises :class:`Refused` before writing anything when the
        package does not fit the device, :class:`NotApplied` when the device does not run the
        new image afterwards."""
        text = self._native.dfu(os.fspath(file), mode, force, recovery, window, chunk, _callback(progress))
        return DfuReport._from_json(text)

    def shell_exec(self, *argv: str) -> ShellResult:
        """Runs a command in the device's shell (``dev.shell_exec("kernel", "version")``)."""
        return _shell(self._native.shell_exec(list(argv), False))

    def stat_list(self) -> list[str]:
        """The statistics groups' names."""
        names: list[str] = json.loads(self._native.stat_list(False))
        return names

    def stat_read(self, group: str) -> dict[str, int]:
        """One statistics group's counters."""
        fields: dict[str, int] = json.loads(self._native.stat_read(group, False))
        return fields

    def settings_get(self, name: str) -> bytes:
        """A setting's value (``app/threshold``)."""
        return bytes.fromhex(self._native.settings_get(name, False))

    def settings_set(self, name: str, value: bytes) -> None:
        """Writes a setting at run time; :meth:`settings_save` keeps it across resets."""
        self._native.settings_set(name, value, False)

    def settings_save(self) -> None:
        """Saves the written settings to the device's storage."""
        self._native.settings_save(False)

    def fs_stat(self, remote: str) -> int:
        """The length of the device's file ``remote``."""
        length: int = self._native.fs_stat(remote, False)
        return length

    def fs_upload(self, data: bytes, remote: str, *, progress: Progress | None = None) -> FileReport:
        """Writes ``data`` to the device's file ``remote`` (created or replaced), pipelined,
        then checks it with the device's hash; raises :class:`UploadError` on a mismatch.
        ``progress`` is called with each :class:`Event`, as for :meth:`dfu`."""
        return _file_report(self._native.fs_upload(data, remote, _callback(progress)))

    def fs_download(self, remote: str, *, progress: Progress | None = None) -> bytes:
        """Reads the device's file ``remote``, pipelined, checked with the device's hash;
        ``progress`` as for :meth:`fs_upload`."""
        return _file(self._native.fs_download(remote, _callback(progress)))

    def settings_delete(self, name: str) -> None:
        """Deletes a setting from storage (Zephyr's ``settings_delete``): the value the device
        holds now stays until it restarts."""
        self._native.settings_delete(name, False)

    def settings_commit(self) -> None:
        """Has the device's settings handlers apply what was written."""
        self._native.settings_commit(False)

    def settings_load(self) -> None:
        """Reads the stored settings back into the device's handlers."""
        self._native.settings_load(False)

    def info(self, format: str | None = None) -> str:
        """The application's ``os info`` text (``format``: Zephyr's letters, ``s`` kernel name,
        ``v`` kernel version, ``a`` all, the default)."""
        text: str = self._native.info(format, False)
        return text

    def groups(self) -> list[Group]:
        """The management groups the device has (the enum group), with names and command
        counts where the device gives them."""
        return _groups(self._native.groups(False))

    def os_tasks(self) -> dict[str, TaskStat]:
        """The device's threads and their statistics."""
        return _tasks(self._native.os_tasks(False))

    def os_mempool(self) -> dict[str, MemPool]:
        """The device's memory pools and their statistics."""
        return _mempools(self._native.os_mempool(False))

    def datetime_get(self) -> str:
        """The device's clock (``2026-01-02T03:04:05``); :class:`DeviceError` while it is unset."""
        text: str = self._native.datetime_get(False)
        return text

    def datetime_set(self, datetime: str) -> None:
        """Sets the device's clock (``YYYY-MM-DDTHH:MM:SS``; the device checks the text)."""
        self._native.datetime_set(datetime, False)

    def storage_erase(self) -> None:
        """Erases the device's storage partition (Zephyr basic group): settings and files."""
        self._native.storage_erase(False)

    def image_slots(self) -> list[dict[str, Any]]:
        """Each image's slots and their sizes (``image slots``), as the device reports them."""
        images: list[dict[str, Any]] = json.loads(self._native.image_slots(False))
        return images

    def fs_hash(self, remote: str, type: str | None = None) -> FileHash:
        """The device's hash (``sha256``) or checksum (``crc32``) of its file ``remote``; the
        device's default type without ``type``."""
        return FileHash(**json.loads(self._native.fs_hash(remote, type, False)))

    def close(self) -> None:
        """Ends the link (BLE: disconnects). Closing twice is harmless."""
        self._native.close(False)

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shell(text: str) -> ShellResult:
    d = json.loads(text)
    return ShellResult(output=d["output"], ret=d["ret"])


def _file_report(text: str) -> FileReport:
    return FileReport._from_dict(json.loads(text))


def _file(text: str) -> bytes:
    return bytes.fromhex(json.loads(text)["hex"])


def _groups(text: str) -> list[Group]:
    return [Group(**g) for g in json.loads(text)]


def _tasks(text: str) -> dict[str, TaskStat]:
    return {name: TaskStat._from(t) for name, t in json.loads(text).items()}


def _mempools(text: str) -> dict[str, MemPool]:
    return {name: MemPool(**p) for name, p in json.loads(text).items()}


def _scan_results(text: str) -> list[ScanResult]:
    return [ScanResult(name=d.get("name"), address=d["address"], rssi=d.get("rssi")) for d in json.loads(text)]


def scan(seconds: float = 5.0) -> list[ScanResult]:
    """The BLE devices in range that advertise the SMP service, strongest first, after scanning
    for ``seconds``. Raises :class:`ConnectionError` (``kind`` ``no_adapter``) when this machine
    has no usable Bluetooth adapter."""
    return _scan_results(_native.scan(seconds, False))


async def scan_async(seconds: float = 5.0) -> list[ScanResult]:
    """:func:`scan` for asyncio."""
    return _scan_results(await _native.scan(seconds, True))


def _callback(progress: Progress | None) -> Callable[[str], object] | None:
    if progress is None:
        return None
    return lambda text: progress(Event._from_json(text))


def connect(udp: str | None = None, *, serial: str | None = None, ble: str | None = None,
            sim: str | None = None, baud: int = 115_200, framing: str | None = None,
            line_delay: float | None = None, mtu: int | None = None, timeout: float = 5.0,
            sim_link: str | None = None, sim_set: Iterable[str] = (), sim_time_scale: float = 1.0,
            sim_state: PathLike | None = None) -> Device:
    """Connects to a device, exactly as the CLI's options of the same names do:

    - ``udp="HOST[:PORT]"`` (port 1337 by default),
    - ``serial="/dev/ttyACM0"`` (or a pty, or ``tcp://HOST:PORT``) with ``baud``, ``framing``
      (``console``, ``raw``, ``shell``; detected by default) and ``line_delay`` (seconds),
    - ``ble="NAME or ADDRESS"``,
    - ``sim="nrf5340"``: the built-in virtual device in this process, over ``sim_link``
      (``ble-phone-fast`` by default, ``udp``, ``serial-115200``, …), with ``sim_set``
      overrides, ``sim_time_scale`` (0: no flash delays) and ``sim_state`` (a file keeping its
      flash).

    ``timeout`` is the seconds an ordinary request waits for its answer; ``mtu`` as ``--mtu``."""
    args = _open_args(udp, serial, ble, sim, baud=baud, framing=framing, line_delay=line_delay, mtu=mtu,
                      timeout=timeout, sim_link=sim_link, sim_set=sim_set, sim_time_scale=sim_time_scale,
                      sim_state=sim_state)
    return Device(_native.NativeDevice.open(aio=False, **args))


T = TypeVar("T")


class DfuRun(Generic[T]):
    """A DFU, an upload or a file transfer started by :meth:`AsyncDevice.dfu`
    (:meth:`AsyncDevice.upload`, :meth:`AsyncDevice.fs_upload`, :meth:`AsyncDevice.fs_download`).
    Await it for the result, or iterate it for the progress events first::

        run = dev.dfu("app.bin")
        async for event in run:
            print(event)
        report = await run

    The work starts at the first ``await`` or iteration; cancelling the task that awaits or
    iterates it (or calling :meth:`cancel`) stops it."""

    def __init__(self, start: Callable[[], tuple[Awaitable[str], _native.EventStream]],
                 parse: Callable[[str], T], progress: Progress | None) -> None:
        self._start_native = start
        self._parse = parse
        self._progress = progress
        self._result: Awaitable[str] | None = None
        self._events: _native.EventStream | None = None
        self._report: T | None = None

    def _start(self) -> None:
        if self._result is None:
            self._result, self._events = self._start_native()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        self._start()
        assert self._events is not None
        try:
            text = await self._events.next()
        except asyncio.CancelledError:
            # The task iterating the events was cancelled: so is the DFU.
            self.cancel()
            raise
        if text is None:
            raise StopAsyncIteration
        return Event._from_json(text)

    def cancel(self) -> None:
        """Stops the DFU (what the device already took stays; a new DFU resumes the upload)."""
        if isinstance(self._result, asyncio.Future):
            self._result.cancel()

    async def _finish(self) -> T:
        if self._report is None:
            self._start()
            if self._progress is not None:
                try:
                    async for event in self:
                        self._progress(event)
                except BaseException:
                    self.cancel()
                    raise
            assert self._result is not None
            self._report = self._parse(await self._result)
        return self._report

    def __await__(self) -> Generator[Any, None, T]:
        return self._finish().__await__()


class AsyncDevice:
    """One device for asyncio: the methods of :class:`Device`, as coroutines. Make one with
    ``await AsyncDevice.connect(...)`` (same arguments as :func:`connect`); ``async with`` closes
    it. The work runs on smpflash's own threads, so the event loop stays free."""

    def __init__(self, native: _native.NativeDevice) -> None:
        self._native = native

    @classmethod
    async def connect(cls, udp: str | None = None, *, serial: str | None = None, ble: str | None = None,
                      sim: str | None = None, baud: int = 115_200, framing: str | None = None,
                      line_delay: float | None = None, mtu: int | None = None, timeout: float = 5.0,
                      sim_link: str | None = None, sim_set: Iterable[str] = (), sim_time_scale: float = 1.0,
                      sim_state: PathLike | None = None) -> AsyncDevice:
        """Connects; see :func:`connect`."""
        args = _open_args(udp, serial, ble, sim, baud=baud, framing=framing, line_delay=line_delay, mtu=mtu,
                          timeout=timeout, sim_link=sim_link, sim_set=sim_set, sim_time_scale=sim_time_scale,
                          sim_state=sim_state)
        return cls(await _native.NativeDevice.open(aio=True, **args))

    @property
    def transport(self) -> str:
        """What the link is."""
        return self._native.describe()

    async def echo(self, text: str) -> str:
        """Asks the device to echo ``text``."""
        answer: str = await self._native.echo(text, True)
        return answer

    async def params(self) -> Limits:
        """The device's SMP buffers."""
        return _limits(await self._native.params(True))

    async def image_state(self) -> list[ImageState]:
        """The images on the device, one entry per slot."""
        return _images(await self._native.image_state(True))

    async def image_test(self, hash: str | bytes) -> list[ImageState]:
        """Marks the image with ``hash`` to run once at the next boot."""
        raw = _resolve(hash, await self.image_state())
        return _images(await self._native.image_write(raw, False, True))

    async def image_confirm(self, hash: str | bytes | None = None) -> list[ImageState]:
        """Makes the image with ``hash`` permanent, or confirms the running image."""
        raw = None if hash is None else _resolve(hash, await self.image_state())
        return _images(await self._native.image_write(raw, True, True))

    async def image_erase(self, slot: int | None = None) -> None:
        """Erases a slot (the secondary without one)."""
        await self._native.image_erase(slot, True)

    async def reset(self, *, force: bool = False, boot_mode: int | None = None) -> None:
        """Resets the device."""
        await self._native.reset(force, boot_mode, True)

    def dfu(self, file: PathLike, *, mode: str | None = None, force: bool = False, recovery: bool = False,
            window: int | None = None, chunk: int | None = None,
            progress: Progress | None = None) -> DfuRun[DfuReport]:
        """Updates the device with ``file``; see :meth:`Device.dfu`. Returns a :class:`DfuRun`:
        await it for the report, or ``async for`` over it for the events. ``progress``, if
        given, is called with each event on the event loop's thread."""
        path = os.fspath(file)
        return DfuRun(lambda: self._native.dfu_async(path, mode, force, recovery, window, chunk),
                      DfuReport._from_json, progress)

    def upload(self, file: PathLike, *, window: int | None = None, chunk: int | None = None,
               progress: Progress | None = None) -> DfuRun[list[UploadReport]]:
        """Uploads the file's images to their free slots (no marking, no reset); await the
        :class:`DfuRun` for the reports, or iterate it for the events."""
        path = os.fspath(file)
        return DfuRun(lambda: self._native.upload_async(path, window, chunk), _uploads, progress)

    async def shell_exec(self, *argv: str) -> ShellResult:
        """Runs a command in the device's shell."""
        return _shell(await self._native.shell_exec(list(argv), True))

    async def stat_list(self) -> list[str]:
        """The statistics groups' names."""
        names: list[str] = json.loads(await self._native.stat_list(True))
        return names

    async def stat_read(self, group: str) -> dict[str, int]:
        """One statistics group's counters."""
        fields: dict[str, int] = json.loads(await self._native.stat_read(group, True))
        return fields

    async def settings_get(self, name: str) -> bytes:
        """A setting's value."""
        return bytes.fromhex(await self._native.settings_get(name, True))

    async def settings_set(self, name: str, value: bytes) -> None:
        """Writes a setting at run time."""
        await self._native.settings_set(name, value, True)

    async def settings_save(self) -> None:
        """Saves the written settings to the device's storage."""
        await self._native.settings_save(True)

    async def fs_stat(self, remote: str) -> int:
        """The length of the device's file ``remote``."""
        length: int = await self._native.fs_stat(remote, True)
        return length

    def fs_upload(self, data: bytes, remote: str, *, progress: Progress | None = None) -> DfuRun[FileReport]:
        """Writes ``data`` to the device's file ``remote``, pipelined and checked; await the
        :class:`DfuRun` for the :class:`FileReport`, or iterate it for the events."""
        return DfuRun(lambda: self._native.fs_upload_async(data, remote), _file_report, progress)

    def fs_download(self, remote: str, *, progress: Progress | None = None) -> DfuRun[bytes]:
        """Reads the device's file ``remote``, pipelined and checked; await the
        :class:`DfuRun` for its bytes, or iterate it for the events."""
        return DfuRun(lambda: self._native.fs_download_async(remote), _file, progress)

    async def settings_delete(self, name: str) -> None:
        """Deletes a setting from storage (Zephyr's ``settings_delete``): the value the device
        holds now stays until it restarts."""
        await self._native.settings_delete(name, True)

    async def settings_commit(self) -> None:
        """Has the device's settings handlers apply what was written."""
        await self._native.settings_commit(True)

    async def settings_load(self) -> None:
        """Reads the stored settings back into the device's handlers."""
        await self._native.settings_load(True)

    async def info(self, format: str | None = None) -> str:
        """The application's ``os info`` text (``format``: Zephyr's letters, ``s`` kernel name,
        ``v`` kernel version, ``a`` all, the default)."""
        text: str = await self._native.info(format, True)
        return text

    async def groups(self) -> list[Group]:
        """The management groups the device has (the enum group), with names and command
        counts where the device gives them."""
        return _groups(await self._native.groups(True))

    async def os_tasks(self) -> dict[str, TaskStat]:
        """The device's threads and their statistics."""
        return _tasks(await self._native.os_tasks(True))

    async def os_mempool(self) -> dict[str, MemPool]:
        """The device's memory pools and their statistics."""
        return _mempools(await self._native.os_mempool(True))

    async def datetime_get(self) -> str:
        """The device's clock (``2026-01-02T03:04:05``); :class:`DeviceError` while it is unset."""
        text: str = await self._native.datetime_get(True)
        return text

    async def datetime_set(self, datetime: str) -> None:
        """Sets the device's clock (``YYYY-MM-DDTHH:MM:SS``; the device checks the text)."""
        await self._native.datetime_set(datetime, True)

    async def storage_erase(self) -> None:
        """Erases the device's storage partition (Zephyr basic group): settings and files."""
        await self._native.storage_erase(True)

    async def image_slots(self) -> list[dict[str, Any]]:
        """Each image's slots and their sizes (``image slots``), as the device reports them."""
        images: list[dict[str, Any]] = json.loads(await self._native.image_slots(True))
        return images

    async def fs_hash(self, remote: str, type: str | None = None) -> FileHash:
        """The device's hash (``sha256``) or checksum (``crc32``) of its file ``remote``; the
        device's default type without ``type``."""
        return FileHash(**json.loads(await self._native.fs_hash(remote, type, True)))

    async def close(self) -> None:
        """Ends the link. Closing twice is harmless."""
        await self._native.close(True)

    async def __aenter__(self) -> AsyncDevice:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class VirtualDevice:
    """smpflash's virtual device (an SMP server with MCUboot's behaviour) running in this
    process, for tests: serve it on UDP (``udp_address``) and, with ``pty=True``, on a pty
    (``pty_path``), and connect to it like to real hardware::

        @pytest.fixture
        def device():
            with smpflash.VirtualDevice(profile="nrf5340", time_scale=0) as sim:
                yield sim

        def test_update(device):
            with smpflash.connect(udp=device.udp_address) as dev:
                dev.dfu("app.signed.bin")

    ``profile`` is one of ``smpflash sim --profile``'s; ``set`` overrides its fields
    (``["buf_size=1024"]``); ``time_scale`` scales flash and boot delays (1 real time, 0 none);
    ``state`` keeps the flash in a file. Faults: ``test_image_crashes`` (a new image under test
    never confirms itself, so MCUboot reverts it), ``reset_after_upload_bytes``,
    ``power_loss_after_swap_sectors``.

    ``bluez=True`` (or a BLE link name, ``"ble-legacy"``) also serves the device as a BlueZ
    peripheral (``org.bluez``) on a private D-Bus bus it starts (needs ``dbus-daemon``), as
    ``smpflash sim --bluez`` does: set ``DBUS_SYSTEM_BUS_ADDRESS`` to ``dbus_address`` and
    connect with ``connect(ble=sim.ble_name)``, through btleplug and BlueZ's D-Bus API."""

    def __init__(self, profile: str = "nrf5340", *, udp: str | None = "127.0.0.1:0", pty: bool = False,
                 pty_baud: int | None = None, time_scale: float = 1.0, set: Iterable[str] = (),
                 state: PathLike | None = None, test_image_crashes: bool = False,
                 reset_after_upload_bytes: int | None = None,
                 power_loss_after_swap_sectors: int | None = None, bluez: bool | str = False,
                 ble_name: str | None = None) -> None:
        link = (bluez if isinstance(bluez, str) else "ble-phone-fast") if bluez else None
        self._native = _native.NativeSim(
            profile, udp, pty, pty_baud, time_scale, list(set), None if state is None else os.fspath(state),
            test_image_crashes, reset_after_upload_bytes, power_loss_after_swap_sectors, link, ble_name,
        )

    @property
    def udp_address(self) -> str:
        """``HOST:PORT`` to pass as ``connect(udp=...)``."""
        address = self._native.udp_address
        if address is None:
            raise ValueError("this virtual device serves no UDP (udp=None)")
        return address

    @property
    def pty_path(self) -> str:
        """The pty to pass as ``connect(serial=...)``."""
        path = self._native.pty_path
        if path is None:
            raise ValueError("this virtual device serves no pty (pty=False)")
        return path

    @property
    def dbus_address(self) -> str:
        """The private bus serving ``org.bluez``: the value for ``DBUS_SYSTEM_BUS_ADDRESS``."""
        address = self._native.dbus_address
        if address is None:
            raise ValueError("this virtual device serves no BlueZ (bluez=False)")
        return address

    @property
    def ble_name(self) -> str:
        """The name the device advertises (``connect(ble=...)``)."""
        name = self._native.ble_name
        if name is None:
            raise ValueError("this virtual device serves no BlueZ (bluez=False)")
        return name

    @property
    def profile(self) -> str:
        """The profile's name."""
        return self._native.profile

    def is_up(self) -> bool:
        """Whether the device's SMP server runs (not while it resets and boots)."""
        return self._native.is_up()

    def close(self) -> None:
        """Stops serving."""
        self._native.close()

    def __enter__(self) -> VirtualDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

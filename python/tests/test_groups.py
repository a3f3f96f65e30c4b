"""The MCUmgr groups beside image and OS from Python: shell, statistics, settings and files,
blocking and through asyncio, against the virtual device (shaped like Zephyr's smp_svr)."""

from __future__ import annotations

import asyncio
import os

import pytest
import smpflash


def test_shell_stat_settings_and_files(virtual_device: smpflash.VirtualDevice) -> None:
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        version = dev.shell_exec("kernel", "version")
        assert version.ret == 0 and "Zephyr version" in version.output
        unknown = dev.shell_exec("no-such-command")
        assert unknown.ret != 0 and unknown.to_dict()["ret"] == unknown.ret

        assert "smp_svr_stats" in dev.stat_list()
        assert "ticks" in dev.stat_read("smp_svr_stats")

        dev.settings_set("app/threshold", b"\x01\xff")
        assert dev.settings_get("app/threshold") == b"\x01\xff"
        dev.settings_save()

        data = os.urandom(20_000)
        report = dev.fs_upload(data, "/lfs1/blob.bin")
        assert report.remote == "/lfs1/blob.bin" and report.bytes == len(data)
        assert report.verified is not None, "the virtual device offers a hash: the upload is checked"
        assert dev.fs_stat("/lfs1/blob.bin") == len(data)
        assert dev.fs_download("/lfs1/blob.bin") == data


def test_group_errors_carry_the_groups_own_code(virtual_device: smpflash.VirtualDevice) -> None:
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        # A name under a root key nobody registered: the settings group's own error.
        with pytest.raises(smpflash.DeviceError) as settings:
            dev.settings_get("nosuchroot/key")
        assert settings.value.name == "SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND"
        with pytest.raises(smpflash.DeviceError) as fs:
            dev.fs_download("/lfs1/missing.bin")
        assert fs.value.name == "FS_MGMT_ERR_FILE_NOT_FOUND"
        # Zephyr's stat_mgmt_show answers an unknown group with "invalid stat name" (it counts
        # the group's entries first); the real servers do, and so does the virtual device.
        with pytest.raises(smpflash.DeviceError) as stat:
            dev.stat_read("no_such_group")
        assert stat.value.name == "STAT_MGMT_ERR_INVALID_STAT_NAME"


def test_the_groups_through_asyncio(virtual_device: smpflash.VirtualDevice) -> None:
    async def main() -> tuple[smpflash.ShellResult, bytes, list[str]]:
        async with await smpflash.AsyncDevice.connect(udp=virtual_device.udp_address) as dev:
            shell = await dev.shell_exec("kernel", "version")
            await dev.fs_upload(b"hello from asyncio", "/lfs1/a.txt")
            assert await dev.fs_stat("/lfs1/a.txt") == 18
            data = await dev.fs_download("/lfs1/a.txt")
            await dev.settings_set("app/x", b"\x07")
            assert await dev.settings_get("app/x") == b"\x07"
            return shell, data, await dev.stat_list()

    shell, data, groups = asyncio.run(main())
    assert shell.ret == 0 and data == b"hello from asyncio" and groups

"""Pure parts of the sandbox set-up: the bwrap command line, GPU allotment, slot locks."""

import os
import threading

import pytest

from archloop.runner.sandbox import gpu, layout
from archloop.runner.sandbox.identity import SandboxUnavailable, acquire_slot

GPUS = [gpu.Gpu(minor=0, uuid="GPU-aaaa-1111", pci="0000:3b:00.0"), gpu.Gpu(minor=1, uuid="GPU-bbbb-2222", pci="0000:5e:00.0"),
        gpu.Gpu(minor=3, uuid="GPU-cccc-3333", pci="0000:86:00.0")]
ROOT = layout.Identity(uid=990, gid=990, drop_privileges=True, slot=2)
USER = layout.Identity(uid=1000, gid=1000, drop_privileges=False)
INTERP = layout.Interpreter(python="/tmp/co/.venv/bin/python", executable="/opt/py/bin/python3.11", venv="/tmp/co/.venv",
                            stdlib="/opt/py/lib/python3.11", masked=("/opt/py/lib/python3.11/site-packages",))


def args_for(identity=ROOT, gpu_view=None) -> list[str]:
    view = layout.Layout(interpreter=INTERP, system_dirs=("/usr/lib/x86_64-linux-gnu",), package_dir="/tmp/co/python/archloop",
                         data_binds={"train_x.npy": "/cache/train_x.npy"}, data_fds={"test_x.npy": 9}, identity=identity,
                         seccomp_fd=7, job_dir_bytes=1 << 28, tmp_bytes=1 << 26, shm_bytes=1 << 26, env={"PATH": "/usr/bin"},
                         gpu=gpu_view)
    return layout.bwrap_args(view, ["python", "-m", "archloop.runner.inner"], root_links=["--symlink", "usr/lib", "/lib"])


def sources(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a in ("--ro-bind", "--ro-bind-try", "--dev-bind", "--bind")]


def test_only_what_the_job_needs_is_bound():
    args = args_for()
    bound = sources(args)
    assert not any(p in ("/usr", "/", "/sys", "/usr/share", "/usr/bin", "/tmp") for p in bound), bound
    assert not any(p.endswith(("test_y.npy", "synthetic.py", ".machine-secret")) or "/datasets" in p for p in bound), bound
    assert not any("/runner/sandbox" in p or p.endswith(("job.py", "__main__.py")) for p in bound), bound
    assert "/usr/bin/setpriv" in bound and "/cache/train_x.npy" in bound
    assert args[args.index("--ro-bind-data") + 1:args.index("--ro-bind-data") + 3] == ["9", "/data/test_x.npy"]


def test_tmp_is_mounted_before_anything_is_bound_under_it():
    """The venv here lives under /tmp: its parents are made inside the sandbox's /tmp tmpfs."""
    args = args_for()
    pairs = list(zip(args, args[1:]))
    assert pairs.index(("--tmpfs", "/tmp")) < pairs.index(("--dir", "/tmp/co"))
    assert ("--dir", "/tmp") not in pairs
    assert not any(a == "--symlink" and args[i + 2] == "/tmp" for i, a in enumerate(args))


def test_sealed_read_only_with_seccomp_and_the_right_mode_flags():
    for identity in (ROOT, USER):
        args = args_for(identity)
        end = args.index("--")
        assert args[end - 6:end] == ["--remount-ro", "/dev", "--remount-ro", "/", "--seccomp", "7"]
        assert ("--unshare-user" in args) == (not identity.drop_privileges)
        assert ("--disable-userns" in args) == (not identity.drop_privileges)
        assert args[end + 1] == ("/usr/bin/setpriv" if identity.drop_privileges else "python")
        assert "--size" in args[args.index("/dev/shm") - 3:args.index("/dev/shm")]
        masked = args.index("/opt/py/lib/python3.11/site-packages")
        assert args[masked - 1] == "--tmpfs" and args[masked + 1:masked + 3] == ["--remount-ro", "/opt/py/lib/python3.11/site-packages"]


def test_gpu_allotment_follows_cuda_visible_devices():
    assert gpu.allot(None, GPUS).gpus == tuple(GPUS)
    assert gpu.allot("", GPUS).gpus == ()
    assert gpu.allot("2", GPUS).gpus == (GPUS[2],)
    assert gpu.allot("1,0", GPUS).gpus == (GPUS[1], GPUS[0])
    assert gpu.allot("GPU-bbbb", GPUS).gpus == (GPUS[1],)
    assert gpu.allot("0,7,1", GPUS).gpus == (GPUS[0],)  # CUDA stops at the first invalid entry
    assert gpu.allot("-1", GPUS).gpus == ()
    mig = gpu.allot("MIG-1234", GPUS)
    assert mig.gpus == tuple(GPUS) and mig.warnings


def test_gpu_nodes_and_sys_paths_are_the_allotted_ones_only():
    allotment = gpu.allot("2", GPUS)
    nodes = gpu.device_nodes(allotment, exists=lambda p: True)
    assert nodes == ["/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
    binds, links = gpu.sys_paths(allotment, exists=lambda p: True, realpath=lambda p: "/sys/devices/pci0000:80/0000:86:00.0")
    assert "/sys/devices/pci0000:80/0000:86:00.0" in binds and "/sys" not in binds
    assert links == {"/sys/bus/pci/devices/0000:86:00.0": "/sys/devices/pci0000:80/0000:86:00.0"}
    assert gpu.device_nodes(gpu.allot("", GPUS), exists=lambda p: True) == []
    view = layout.GpuView(nodes=tuple(nodes), sys_binds=tuple(binds), sys_links=tuple(links.items()),
                          env=(("CUDA_DEVICE_ORDER", "PCI_BUS_ID"), ("CUDA_VISIBLE_DEVICES", "2")))
    args = args_for(gpu_view=view)
    assert [args[i + 1] for i, a in enumerate(args) if a == "--dev-bind"] == nodes
    assert args[args.index("CUDA_VISIBLE_DEVICES") + 1] == "2"


def test_driver_information_is_parsed():
    text = "Model:           NVIDIA H200\nIRQ:             42\nGPU UUID:        GPU-1b2c\nDevice Minor:    5\n"
    assert gpu.parse_information("0000:3B:00.0", text) == gpu.Gpu(minor=5, uuid="GPU-1b2c", pci="0000:3b:00.0")
    assert gpu.parse_information("x", "nothing") is None


def test_slots_are_exclusive_and_released(tmp_path):
    first = acquire_slot(2, 0, lock_dir=tmp_path)
    second = acquire_slot(2, 0, lock_dir=tmp_path)
    assert {first.index, second.index} == {0, 1}
    with pytest.raises(SandboxUnavailable, match="all 2 sandbox slots"):
        acquire_slot(2, 0, lock_dir=tmp_path)
    first.release()
    third = acquire_slot(2, 0, lock_dir=tmp_path)
    assert third.index == first.index
    second.release()
    third.release()


def test_a_waiting_job_gets_the_first_slot_freed(tmp_path):
    held = acquire_slot(1, 0, lock_dir=tmp_path)
    threading.Timer(0.2, held.release).start()
    waited = acquire_slot(1, 5, lock_dir=tmp_path)
    assert waited.index == 0
    waited.release()
    assert os.stat(tmp_path).st_mode & 0o777 in (0o700, 0o755)

"""A real Asterisk for development and integration tests, in a cached Debian-unstable chroot.

Debian 12 ships no Asterisk; Debian unstable does (Asterisk 22). Rather than asking every developer and CI run
to install a PBX, this admin tool debootstraps a minimal sid chroot once (about a minute, cached outside the
repository), installs Asterisk into it, renders the project's own configuration templates from ``asterisk/``
into an *instance directory* inside the chroot and runs Asterisk there. The chroot shares the host's network,
so AMI, ARI/HTTP, SIP and FastAGI on 127.0.0.1 work in both directions, and files under the chroot (prompts,
recordings) are visible from the host at ``root / path``.

This is deliberately synchronous (``subprocess``): it is an operator tool, never on the call path.

Templates use ``@@NAME@@`` placeholders; :meth:`SandboxConfig.placeholders` lists every name. Rendering fails
if a template uses a name that has no value, so a typo cannot silently reach Asterisk.

Command line (or ``scripts/asterisk-sandbox``):
``python -m fourteen.sandbox up|down|status|provision|render|rx CMD|sounds DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROOT = "/var/cache/fourteen/asterisk-chroot"
SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm")
APT_OPTS = ("-o", "Acquire::Check-Valid-Until=false", "-o", "DPkg::Lock::Timeout=300")
MODULE_DIR = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
STOCK_MOH_DIR = "/usr/share/asterisk/moh"
_PLACEHOLDER = re.compile(r"@@([A-Z][A-Z0-9_]*)@@")
# Marker written into the instance run dir when up() bind-mounted /proc, so down() only undoes its own mount.
_PROC_MARKER = "proc-mounted-by-fourteen"


class SandboxError(RuntimeError):
    """Something the operator has to fix; the message says what to do."""


def _default_template_dir() -> Path:
    # src/fourteen/sandbox.py -> repository root / asterisk
    return Path(__file__).resolve().parents[2] / "asterisk"


@dataclass(frozen=True)
class SandboxConfig:
    """Where the sandbox lives and what it binds to. Paths except ``root`` are *inside* the chroot."""

    root: Path = field(default_factory=lambda: Path(os.environ.get("FOURTEEN_SANDBOX_ROOT") or DEFAULT_ROOT))
    instance_dir: str = "/opt/fourteen"
    template_dir: Path = field(default_factory=_default_template_dir)
    bind_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "fourteen"
    ami_secret: str = "fourteen"
    http_port: int = 8088
    ari_user: str = "fourteen"
    ari_password: str = "fourteen"
    sip_port: int = 5060
    rtp_start: int = 16000
    rtp_end: int = 16999
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    default_destination: str = "Local/default@kcc"
    verbose: int = 3
    boot_timeout: float = 30.0

    @property
    def etc_dir(self) -> str:
        return f"{self.instance_dir}/etc/asterisk"

    @property
    def run_dir(self) -> str:
        return f"{self.instance_dir}/run"

    @property
    def log_dir(self) -> str:
        return f"{self.instance_dir}/log"

    @property
    def sounds_dir(self) -> str:
        """Generated prompts go to ``<sounds_dir>/fourteen/<lang>/<name>.wav``."""
        return f"{self.instance_dir}/sounds"

    @property
    def asterisk_conf(self) -> str:
        return f"{self.etc_dir}/asterisk.conf"

    def host_path(self, inside: str) -> Path:
        """The host's view of a path inside the chroot."""
        return self.root / inside.lstrip("/")

    def placeholders(self) -> dict[str, str]:
        """Every ``@@NAME@@`` the templates may use, with its value for this sandbox."""
        moh = self.host_path(STOCK_MOH_DIR)
        has_stock_moh = moh.is_dir() and any(moh.iterdir())
        values: dict[str, object] = {
            "INSTANCE_DIR": self.instance_dir,
            "ETC_DIR": self.etc_dir,
            "RUN_DIR": self.run_dir,
            "LOG_DIR": self.log_dir,
            "SPOOL_DIR": f"{self.instance_dir}/spool",
            "LIB_DIR": f"{self.instance_dir}/lib",
            "MODULE_DIR": MODULE_DIR,
            "SOUNDS_DIR": self.sounds_dir,
            "MOH_DIR": STOCK_MOH_DIR if has_stock_moh else f"{self.sounds_dir}/moh",
            "VERBOSE": self.verbose,
            "AMI_HOST": self.bind_host,
            "AMI_PORT": self.ami_port,
            "AMI_USER": self.ami_user,
            "AMI_SECRET": self.ami_secret,
            "HTTP_HOST": self.bind_host,
            "HTTP_PORT": self.http_port,
            "ARI_USER": self.ari_user,
            "ARI_PASSWORD": self.ari_password,
            "SIP_HOST": self.bind_host,
            "SIP_PORT": self.sip_port,
            "MEDIA_ADDRESS": self.bind_host,
            "CARRIER_MATCH": self.bind_host,
            "RTP_START": self.rtp_start,
            "RTP_END": self.rtp_end,
            "AGI_HOST": self.agi_host,
            "AGI_PORT": self.agi_port,
            "DEFAULT_DESTINATION": self.default_destination,
        }
        return {k: str(v) for k, v in values.items()}


def _run(
    cmd: list[str], *, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SandboxError(f"{cmd[0]} not found: install it (apt-get install {cmd[0]})") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    if check and proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-2000:]
        raise SandboxError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{output}")
    return proc


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError("the Asterisk sandbox needs root (debootstrap, chroot, mount): run it as root")


def _is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def _mount_proc(cfg: SandboxConfig) -> bool:
    """Bind-mount /proc into the chroot unless it already is; True when this call mounted it."""
    proc = cfg.root / "proc"
    if _is_mountpoint(proc):
        return False
    proc.mkdir(exist_ok=True)
    _run(["mount", "--bind", "/proc", str(proc)])
    return True


def _chroot_in_use(cfg: SandboxConfig) -> bool:
    """Whether any process still runs inside the chroot (then /proc must stay mounted)."""
    root = str(cfg.root.resolve())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == root:
                    return True
            except OSError:
                continue
    return False


def _install_host_package(name: str) -> None:
    """apt-get install on the host; refresh the package lists first only when the install needs it."""
    install = ["apt-get", *APT_OPTS, "install", "-y", "--no-install-recommends", name]
    if _run(install, check=False, timeout=600).returncode != 0:
        _run(["apt-get", *APT_OPTS, "update"], timeout=600)
        _run(install, timeout=600)


def provision(cfg: SandboxConfig | None = None) -> None:
    """Create the chroot with Asterisk once; a no-op when ``root/usr/sbin/asterisk`` exists.

    debootstrap runs into ``<root>.partial`` and is renamed on success, so an interrupted run never leaves a
    half-made chroot that looks usable. apt needs ``Check-Valid-Until=false``: sid's Release file is often
    "expired" from the point of view of a fresh chroot.
    """
    cfg = cfg or SandboxConfig()
    if (cfg.root / "usr/sbin/asterisk").exists():
        return
    _require_root()
    if cfg.root.resolve() == Path("/"):
        raise SandboxError(
            "the sandbox root must not be /: set FOURTEEN_SANDBOX_ROOT to a directory of its own"
        )
    if not (cfg.root / "usr/bin/apt-get").exists():
        if cfg.root.exists() and any(cfg.root.iterdir()):
            raise SandboxError(f"{cfg.root} exists but is no Debian chroot: remove it or choose another root")
        if shutil.which("debootstrap") is None:
            _install_host_package("debootstrap")
        partial = cfg.root.with_name(cfg.root.name + ".partial")
        if partial.exists():
            if _is_mountpoint(partial / "proc"):
                _run(["umount", str(partial / "proc")])
            shutil.rmtree(partial)
        partial.parent.mkdir(parents=True, exist_ok=True)
        _run(["debootstrap", "--variant=minbase", SUITE, str(partial)], timeout=1200)
        if cfg.root.exists():
            cfg.root.rmdir()  # empty, checked above
        partial.rename(cfg.root)
    mounted = _mount_proc(cfg)
    try:
        chroot = ["chroot", str(cfg.root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", *APT_OPTS]
        _run([*chroot, "update"], timeout=600)
        _run([*chroot, "install", "-y", "--no-install-recommends", *PACKAGES], timeout=1200)
        _run([*chroot, "clean"])
    finally:
        if mounted and not _chroot_in_use(cfg):
            _run(["umount", str(cfg.root / "proc")], check=False)
    if not (cfg.root / "usr/sbin/asterisk").exists():
        raise SandboxError(f"apt-get finished but {cfg.root}/usr/sbin/asterisk is missing: remove {cfg.root}")


def render(template: str, values: dict[str, str], name: str = "<template>") -> str:
    """Replace every ``@@NAME@@``; an unknown name is an error, not an empty string."""
    missing = sorted({m for m in _PLACEHOLDER.findall(template) if m not in values})
    if missing:
        raise SandboxError(f"{name}: no value for placeholder(s) {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def render_config(cfg: SandboxConfig, dest_dir: Path | None = None) -> Path:
    """Fill every ``*.conf`` template from ``cfg.template_dir`` into ``dest_dir`` (default: instance etc).

    Also creates the instance's run/log/spool/lib/sounds directories that the rendered asterisk.conf names.
    Returns the directory written.
    """
    if not cfg.template_dir.is_dir():
        raise SandboxError(f"template directory {cfg.template_dir} missing: run from a source checkout")
    dest = dest_dir or cfg.host_path(cfg.etc_dir)
    dest.mkdir(parents=True, exist_ok=True)
    values = cfg.placeholders()
    for inside in ("RUN_DIR", "LOG_DIR", "SPOOL_DIR", "LIB_DIR", "SOUNDS_DIR"):
        cfg.host_path(values[inside]).mkdir(parents=True, exist_ok=True)
    cfg.host_path(values["SPOOL_DIR"] + "/outgoing").mkdir(exist_ok=True)
    cfg.host_path(values["MOH_DIR"]).mkdir(parents=True, exist_ok=True)
    for template in sorted(cfg.template_dir.glob("*.conf")):
        text = render(template.read_text(), values, template.name)
        target = dest / template.name
        tmp = target.with_suffix(".conf.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return dest


def copy_sounds(cfg: SandboxConfig, src_dir: Path) -> Path:
    """Copy a tree of generated prompts (``fourteen/<lang>/<name>.wav``) into the sandbox's sounds dir.

    ``src_dir`` is the directory that *contains* ``fourteen/`` (or the ``fourteen`` directory itself).
    Returns the host path of the sounds dir.
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise SandboxError(f"sounds directory {src} does not exist: generate the prompts first")
    dest = cfg.host_path(cfg.sounds_dir)
    if src.name == "fourteen" and not (src / "fourteen").is_dir():
        dest = dest / "fourteen"
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return cfg.host_path(cfg.sounds_dir)


def _asterisk(cfg: SandboxConfig, *args: str) -> list[str]:
    return ["chroot", str(cfg.root), "/usr/sbin/asterisk", "-C", cfg.asterisk_conf, *args]


def _pid(cfg: SandboxConfig) -> int | None:
    """PID from the pidfile, if that process is alive and is Asterisk."""
    pidfile = cfg.host_path(f"{cfg.run_dir}/asterisk.pid")
    try:
        pid = int(pidfile.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "asterisk" else None


def rx(cfg: SandboxConfig, command: str, timeout: float = 15.0) -> str:
    """Run one Asterisk CLI command over the control socket and return its output."""
    if _pid(cfg) is None:
        raise SandboxError("Asterisk is not running in the sandbox: run `scripts/asterisk-sandbox up` first")
    return _run(_asterisk(cfg, "-rx", command), timeout=timeout).stdout


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def up(cfg: SandboxConfig | None = None) -> dict[str, Any]:
    """Provision if needed, render the config and start Asterisk; return :func:`status`.

    Idempotent: when Asterisk already runs, the config is re-rendered and ``core reload`` applies it (a
    changed modules.conf needs ``down`` + ``up``).
    """
    cfg = cfg or SandboxConfig()
    _require_root()
    provision(cfg)
    render_config(cfg)
    if _pid(cfg) is not None:
        rx(cfg, "core reload")
        return status(cfg)
    if _port_open(cfg.bind_host, cfg.ami_port):
        raise SandboxError(
            f"{cfg.bind_host}:{cfg.ami_port} (AMI) is already in use by another program: stop it or choose "
            "other ports in SandboxConfig"
        )
    run_dir = cfg.host_path(cfg.run_dir)
    if _mount_proc(cfg):
        (run_dir / _PROC_MARKER).write_text("1\n")
    started = time.monotonic()
    _run(_asterisk(cfg), timeout=cfg.boot_timeout)  # daemonises; the pidfile appears in run_dir
    # The parent returns before the daemon has opened its control socket; wait for it before asking it.
    ctl = run_dir / "asterisk.ctl"
    deadline = started + cfg.boot_timeout
    while not (ctl.exists() and _pid(cfg)) and time.monotonic() < deadline:
        time.sleep(0.02)
    booted = _run(_asterisk(cfg, "-rx", "core waitfullybooted"), check=False, timeout=cfg.boot_timeout)
    if booted.returncode != 0 or _pid(cfg) is None:
        log = cfg.host_path(f"{cfg.log_dir}/messages.log")
        raise SandboxError(f"Asterisk did not boot ({booted.stderr.strip()}): see {log}")
    boot_seconds = time.monotonic() - started
    if not _port_open(cfg.bind_host, cfg.ami_port):
        raise SandboxError(f"Asterisk booted but AMI is not listening on {cfg.bind_host}:{cfg.ami_port}")
    result = status(cfg)
    result["boot_seconds"] = round(boot_seconds, 3)
    return result


def down(cfg: SandboxConfig | None = None, timeout: float = 10.0) -> None:
    """Stop Asterisk (``core stop now``, then TERM, then KILL) and undo our /proc mount if nothing uses it."""
    cfg = cfg or SandboxConfig()
    pid = _pid(cfg)
    if pid is not None:
        _run(_asterisk(cfg, "-rx", "core stop now"), check=False, timeout=timeout)
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
            deadline = time.monotonic() + timeout / 2
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
            if not Path(f"/proc/{pid}").exists():
                break
    marker = cfg.host_path(f"{cfg.run_dir}/{_PROC_MARKER}")
    if marker.exists() and not _chroot_in_use(cfg):
        _run(["umount", str(cfg.root / "proc")], check=False)
        marker.unlink()


def status(cfg: SandboxConfig | None = None) -> dict[str, Any]:
    """Running state, PID, Asterisk version and the ports the sandbox binds."""
    cfg = cfg or SandboxConfig()
    pid = _pid(cfg)
    version = rx(cfg, "core show version").strip() if pid is not None else None
    return {
        "running": pid is not None,
        "pid": pid,
        "version": version,
        "root": str(cfg.root),
        "provisioned": (cfg.root / "usr/sbin/asterisk").exists(),
        "instance_dir": cfg.instance_dir,
        "sounds_dir": str(cfg.host_path(cfg.sounds_dir)),
        "ports": {
            "ami": f"{cfg.bind_host}:{cfg.ami_port}",
            "http": f"{cfg.bind_host}:{cfg.http_port}",
            "sip": f"{cfg.bind_host}:{cfg.sip_port}",
            "rtp": f"{cfg.rtp_start}-{cfg.rtp_end}",
            "agi_target": f"{cfg.agi_host}:{cfg.agi_port}",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asterisk-sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "provision", "render", "rx", "sounds"])
    parser.add_argument("args", nargs="*", help="rx: the CLI command; sounds: the prompts directory")
    parser.add_argument(
        "--root", type=Path, help=f"chroot (default $FOURTEEN_SANDBOX_ROOT or {DEFAULT_ROOT})"
    )
    opts = parser.parse_args(argv)
    cfg = SandboxConfig() if opts.root is None else dataclasses.replace(SandboxConfig(), root=opts.root)
    try:
        if opts.action == "up":
            print(json.dumps(up(cfg), indent=2))
        elif opts.action == "down":
            down(cfg)
        elif opts.action == "status":
            print(json.dumps(status(cfg), indent=2))
        elif opts.action == "provision":
            provision(cfg)
        elif opts.action == "render":
            print(render_config(cfg))
        elif opts.action == "rx":
            print(rx(cfg, " ".join(opts.args)), end="")
        elif opts.action == "sounds":
            if len(opts.args) != 1:
                parser.error("sounds needs exactly one directory")
            print(copy_sounds(cfg, Path(opts.args[0])))
    except SandboxError as exc:
        print(f"asterisk-sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

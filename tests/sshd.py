"""A real OpenSSH sshd on a free loopback port, with its own config, keys and remote root."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # sshd refuses to re-exec itself unless started by absolute path
SSH_KEYGEN = "ssh-keygen"
INSTALL_HINT = "sshd not found at /usr/sbin/sshd: apt-get install openssh-server"
PRIVSEP_DIR = Path("/run/sshd")  # sshd running as root insists on this empty folder
UNPRIVILEGED_USER = "cebhub-sftp"  # made when tests run as root, so that chmod really bites
HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds for sshd to accept connections
STOP_TIMEOUT = 5.0

_running: set[SshdServer] = set()  # stopped at exit even if a test run is torn down badly


class SshdServer:
    """One sshd process serving SFTP; `root` is the folder remote paths are tested under."""

    def __init__(self, base: Path, *, max_file_size: int | None = None) -> None:
        self.base = base
        self.host = HOST
        self.port = _free_port()
        self.username = pwd.getpwuid(os.geteuid()).pw_name
        self.unprivileged_username = _unprivileged_user()
        self.host_key = base / "ssh_host_ed25519_key"
        self.user_key = base / "id_ed25519"
        self.known_hosts = base / "known_hosts"
        self.root = base / "root"
        self.config = base / "sshd_config"
        self.log_file = base / "sshd.log"
        # Simulates a full disk: writes past this size fail with EFBIG inside the server.
        self.max_file_size = max_file_size
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepare()

    def _prepare(self) -> None:
        # 0755 so the unprivileged user's session can read authorized_keys and reach root/.
        self.base.chmod(0o755)
        self.root.mkdir(mode=0o755)
        self.root.chmod(0o755)
        _keygen(self.host_key)
        _keygen(self.user_key)
        authorized = self.base / "authorized_keys"
        authorized.write_text(self.user_key.with_suffix(".pub").read_text())
        authorized.chmod(0o644)
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.config.write_text(self._config_text(authorized))

    def _config_text(self, authorized: Path) -> str:
        users = " ".join(sorted({self.username, self.unprivileged_username}))
        return "\n".join(
            [
                f"ListenAddress {self.host}:{self.port}",
                f"HostKey {self.host_key}",
                f"PidFile {self.base / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                f"AllowUsers {users}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "UseDNS no",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )

    def start(self) -> None:
        """Start sshd (again) on the same port with the same host key; wait until it answers."""
        if self._proc is not None:
            return
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=self._limit_file_size if self.max_file_size else None,
            )
        _running.add(self)
        self._wait_until_ready()

    def _limit_file_size(self) -> None:
        # Runs in the child before exec; the limit and the ignored signal are inherited by
        # every session, so an oversized write returns EFBIG instead of killing the server.
        size = self.max_file_size or resource.RLIM_INFINITY
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"sshd exited at start:\n{self.log()}")
            if _banner(self.host, self.port).startswith(b"SSH-2.0-"):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sshd did not accept connections in {START_TIMEOUT}s:\n{self.log()}")

    def stop(self) -> None:
        """An outage: open sessions die with the listener, new connections are refused."""
        if self._proc is None:
            return
        self.drop_connections()
        self._proc.terminate()
        try:
            self._proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        _running.discard(self)

    def drop_connections(self) -> None:
        """Kill every session process (not the listener): clients see the connection drop."""
        if self._proc is None:
            return
        pids = _descendants(self._proc.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.01)

    def session_pids(self) -> list[int]:
        return _descendants(self._proc.pid) if self._proc else []

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def sshd_installed() -> bool:
    return os.access(SSHD, os.X_OK)


@contextlib.contextmanager
def running_sshd(*, max_file_size: int | None = None) -> Iterator[SshdServer]:
    """Start a private sshd; stop it and remove its folder afterwards."""
    if not sshd_installed():
        raise RuntimeError(INSTALL_HINT)
    base = Path(tempfile.mkdtemp(prefix="cebhub-sshd-"))
    server = SshdServer(base, max_file_size=max_file_size)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        _remove_tree(base)


def _keygen(path: Path) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "cebhub-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _banner(host: str, port: int) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            return sock.recv(64)
    except OSError:
        return b""


def _unprivileged_user() -> str:
    """A user that file permissions apply to: ourselves, or a dedicated one when root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        # Password "*" rather than useradd's default "!": sshd without PAM refuses "!" accounts
        # as locked even for key logins. nologin is fine: internal-sftp never runs the shell.
        options = ["--system", "--no-create-home", "--home-dir", "/nonexistent"]
        options += ["--shell", "/usr/sbin/nologin", "--password", "*"]
        subprocess.run(
            ["useradd", *options, UNPRIVILEGED_USER],
            check=False,  # a parallel run may have made it first; getpwnam below decides
            stdin=subprocess.DEVNULL,
        )
        pwd.getpwnam(UNPRIVILEGED_USER)
    return UNPRIVILEGED_USER


def _descendants(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = _parent_pid(entry)
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _parent_pid(proc_dir: Path) -> int | None:
    try:
        stat_line = (proc_dir / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields follow the last ")".
    fields = stat_line.rsplit(")", 1)[1].split()
    return int(fields[1])


def _alive(pid: int) -> bool:
    proc_dir = Path(f"/proc/{pid}")
    try:
        state = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _remove_tree(base: Path) -> None:
    # Tests leave read-only folders behind; an unprivileged run cannot delete inside them.
    for folder, dirs, _files in os.walk(base):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, name), 0o755)
    shutil.rmtree(base, ignore_errors=True)


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        server.stop()

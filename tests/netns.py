"""Separate hosts on one machine: Linux network namespaces on a bridge, for chaos tests.

The root namespace gets a bridge with the first address of a private /24 (10.213.N.1);
the services listen there. Each "host" is a network namespace with its own loopback and
one interface (eth0, 10.213.N.k) whose other end is a port of the bridge, so everything a
process in it sends to the services crosses a link the test can cut (`cut`: the bridge
port goes down, frames vanish as on a pulled cable, TCP sees silence) and heal.

A host can also be given a link that can turn slow and lossy (`shape`/`unshape`).
`tc qdisc … netem` does that where the kernel has it; where it does not (no sch_netem and
no modules, as in small VMs), the link is a pair of TAP devices joined by a relay process
(`python -m tests.netns relay`) that, while shaping is on (SIGUSR1 on, SIGUSR2 off),
holds every frame for the delay and drops a seeded random share of them — the same
thing, done in user space.

Names start with `ttn<pid>` (pid of the process that made them), so a later run removes
what a crashed one left behind (`clean_leftovers`) and never touches another live run's.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import heapq
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "ttn"
NETWORK = "10.213"  # 10.213.N.0/24, N picked free per run
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
_OURS = re.compile(rf"^{PREFIX}(\d+)")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers() -> list[str]:
    """Remove namespaces and links named by a run whose process is gone; returns their names."""
    if shutil.which("ip") is None:
        return []
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if (m := _OURS.match(name)) and not _alive(int(m.group(1))):
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        if (m := _OURS.match(name)) and not _alive(int(m.group(1))):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def refusal() -> str | None:
    """Why this machine cannot run the namespace tests, or None when it can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"the kernel refused a network namespace: {made.stderr.strip()}"
    try:
        veth = _ip("link", "add", f"{PREFIX}{os.getpid()}pa", "type", "veth", "peer", "name",
                   f"{PREFIX}{os.getpid()}pb", check=False)
        if veth.returncode != 0:
            return f"the kernel refused a veth pair: {veth.stderr.strip()}"
        _ip("link", "del", f"{PREFIX}{os.getpid()}pa", check=False)
        bridge = _ip("link", "add", f"{PREFIX}{os.getpid()}pr", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"the kernel refused a bridge: {bridge.stderr.strip()}"
        _ip("link", "del", f"{PREFIX}{os.getpid()}pr", check=False)
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> str:
    used = _ip("-o", "addr", "show", check=False).stdout + _ip("route", "show", "table", "all", check=False).stdout
    start = os.getpid() % 200 + 20
    for offset in range(200):
        third = (start + offset) % 230 + 20
        prefix = f"{NETWORK}.{third}."
        if prefix not in used:
            return prefix
    raise RuntimeError(f"no free {NETWORK}.N.0/24 network on this machine")


@dataclass
class Host:
    name: str
    netns: str
    address: str
    port: str  # the bridge side of its link, in the root namespace
    shaping: str = ""  # how its link can be shaped: "netem", "relay" or "" (it cannot)
    relay: subprocess.Popen | None = None
    netem: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> list[str]:
        """Run a command on this host."""
        return ["ip", "netns", "exec", self.netns]


@dataclass
class Network:
    """A bridge and hosts on it; `close()` removes everything it made, whatever failed."""

    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    subnet: str = ""
    hosts: dict[str, Host] = field(default_factory=dict)
    logs: Path | None = None
    _made_bridge: bool = False

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge: where the services listen."""
        return f"{self.subnet}1"

    def up(self) -> Network:
        self.subnet = _free_subnet()
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def _new_netns(self, name: str) -> tuple[str, str]:
        netns, address = f"{self.tag}-{name}", f"{self.subnet}{len(self.hosts) + 2}"
        _ip("netns", "add", netns)
        self.hosts[name] = Host(name, netns, address, "")
        _ip("-n", netns, "link", "set", "lo", "up")
        return netns, address

    def add_host(self, name: str) -> Host:
        """A namespace joined to the bridge by a veth pair."""
        netns, address = self._new_netns(name)
        host = self.hosts[name]
        host.port = f"{self.tag}h{len(self.hosts)}"
        inner = f"{self.tag}i{len(self.hosts)}"
        _ip("link", "add", host.port, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", netns)
        _ip("-n", netns, "link", "set", inner, "name", "eth0")
        self._address(host)
        _ip("link", "set", host.port, "master", self.bridge)
        _ip("link", "set", host.port, "up")
        return host

    def add_shapable_host(self, name: str, delay_ms: int, loss_percent: float, seed: int = 21) -> Host:
        """A host whose link, once `shape`d, delays every frame by `delay_ms` and drops
        `loss_percent` of them, each way: netem on both ends of a veth pair where the kernel
        has it, else a TAP relay (see the module doc). It starts unshaped."""
        host = self.add_host(name)
        host.netem = ["netem", "delay", f"{delay_ms}ms", "loss", f"{loss_percent}%"]
        probe = subprocess.run(["tc", "qdisc", "add", "dev", host.port, "root", "netem", "delay", "0ms"],
                               capture_output=True)
        if probe.returncode == 0:
            subprocess.run(["tc", "-n", host.netns, "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "0ms"],
                           check=True)
            host.shaping = "netem"
            return host
        # No netem here: replace the veth pair by two TAPs and a relay between them.
        _ip("link", "del", host.port)
        _ip("tuntap", "add", "dev", host.port, "mode", "tap")
        _ip("-n", host.netns, "tuntap", "add", "dev", "eth0", "mode", "tap")
        log = open(self.logs / f"relay-{name}.log", "ab") if self.logs else subprocess.DEVNULL  # noqa: SIM115
        host.relay = subprocess.Popen(
            [sys.executable, "-m", "tests.netns", "relay", "--outer", host.port, "--netns", host.netns,
             "--inner", "eth0", "--delay-ms", str(delay_ms), "--loss-percent", str(loss_percent),
             "--seed", str(seed)],
            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True)
        ready, _, _ = select.select([host.relay.stdout], [], [], 15)
        if not ready or host.relay.stdout.readline().strip() != b"relaying":
            raise RuntimeError(f"the link relay of {name} did not start (see relay-{name}.log)")
        self._address(host)
        _ip("link", "set", host.port, "master", self.bridge)
        _ip("link", "set", host.port, "up")
        host.shaping = "relay"
        self._wait_reachable(host)
        return host

    def shape(self, name: str, on: bool = True) -> None:
        """Turn a shapable host's delay and loss on (or off again)."""
        host = self.hosts[name]
        if host.shaping == "netem":
            netem = host.netem if on else ["netem", "delay", "0ms"]
            subprocess.run(["tc", "qdisc", "replace", "dev", host.port, "root", *netem], check=True)
            subprocess.run(["tc", "-n", host.netns, "qdisc", "replace", "dev", "eth0", "root", *netem], check=True)
        elif host.shaping == "relay":
            host.relay.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        else:
            raise ValueError(f"{name}'s link cannot be shaped")

    def _address(self, host: Host) -> None:
        _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")

    def _wait_reachable(self, host: Host, timeout: float = 15.0) -> None:
        """Until a TCP connection from the host to the gateway is answered (refused is an answer)."""
        knock = (f"import socket\ntry: socket.create_connection(('{self.gateway}', 9), 1)\n"
                 "except ConnectionRefusedError: pass")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.relay is not None and host.relay.poll() is not None:
                raise RuntimeError(f"the link relay of {host.name} exited {host.relay.returncode}")
            if subprocess.run([*host.prefix, sys.executable, "-c", knock], capture_output=True).returncode == 0:
                return
        raise RuntimeError(f"{host.name} ({host.address}) cannot reach {self.gateway}")

    def cut(self, name: str) -> None:
        """Pull the host's cable: its bridge port goes down, every frame either way is lost."""
        _ip("link", "set", self.hosts[name].port, "down")

    def heal(self, name: str) -> None:
        _ip("link", "set", self.hosts[name].port, "up")

    def close(self) -> None:
        for host in self.hosts.values():
            if host.relay is not None and host.relay.poll() is None:
                host.relay.terminate()
                try:
                    host.relay.wait(5)
                except subprocess.TimeoutExpired:
                    host.relay.kill()
                    host.relay.wait()
            _ip("netns", "del", host.netns, check=False)  # takes eth0 (and its veth peer) along
            _ip("link", "del", host.port, check=False)
        if self._made_bridge:
            _ip("link", "del", self.bridge, check=False)
        self.hosts.clear()


# -- the user-space link (where the kernel has no netem) ----------------------------------

def open_tap(name: str) -> int:
    """Attach to an existing TAP device of the calling thread's network namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def enter_netns(name: str) -> None:
    """Move the calling process (single-threaded) into a named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)


def relay(a: int, b: int, delay: float, loss: float, rng: random.Random) -> None:
    """Copy frames between two TAP fds; while shaping is on (SIGUSR1; SIGUSR2 turns it off)
    each is held `delay` seconds and a `loss` share is dropped.

    Runs until either device goes away. Frames keep their order (same delay for all).
    """
    shaping = [False]
    signal.signal(signal.SIGUSR1, lambda *_: shaping.__setitem__(0, True))
    signal.signal(signal.SIGUSR2, lambda *_: shaping.__setitem__(0, False))
    print("relaying", flush=True)  # the signals are handled from here on
    pending: list[tuple[float, int, int, bytes]] = []
    seq, last_due = 0, 0.0
    peer = {a: b, b: a}
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 1.0
        ready, _, _ = select.select([a, b], [], [], timeout)
        for fd in ready:
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:  # the device was removed
                    return
                if not frame:
                    return
                if shaping[0] and rng.random() < loss:
                    continue
                # never before a frame already held: order is kept when shaping stops
                last_due = max(last_due, time.monotonic() + (delay if shaping[0] else 0.0))
                seq += 1
                heapq.heappush(pending, (last_due, seq, peer[fd], frame))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, out, frame = heapq.heappop(pending)
            if not _write(out, frame):
                return


def _write(fd: int, frame: bytes) -> bool:
    """Write a frame; False once the device is gone (a frame to a device that is down is lost)."""
    try:
        os.write(fd, frame)
    except OSError as exc:
        return exc.errno not in (9, 19)  # EBADF, ENODEV
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.netns", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("relay", help="join a root-namespace TAP and a TAP in a namespace, slowly and lossily")
    run.add_argument("--outer", required=True)
    run.add_argument("--netns", required=True)
    run.add_argument("--inner", required=True)
    run.add_argument("--delay-ms", type=float, default=50)
    run.add_argument("--loss-percent", type=float, default=2.5)
    run.add_argument("--seed", type=int, default=21)
    sub.add_parser("clean", help="remove namespaces and links left by crashed runs")
    args = parser.parse_args(argv)
    if args.command == "clean":
        print("\n".join(clean_leftovers()) or "nothing left behind")
        return 0
    outer = open_tap(args.outer)
    enter_netns(args.netns)
    inner = open_tap(args.inner)
    try:
        relay(outer, inner, args.delay_ms / 1000, args.loss_percent / 100, random.Random(args.seed))
    except OSError as exc:
        print(f"relay ended: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m badlab up|down|check|step``: start a scenario's lab, stop it, validate scenario
files, change a running lab (timeline steps on demand, through the daemon's control socket).

``up`` validates the scenario, takes a free slot (a flock'd file, so parallel labs never share
addresses), forks a daemon that starts the API server, the lab network and the pods and runs the
timeline, and returns once that daemon says the lab is ready (or prints why it is not). The
daemon works in the lab directory; every process it starts works in a directory under it and
is listed in ``<dir>/pids``, which is how ``down`` finds exactly those processes again, also
after the daemon crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from badlab.errors import LabError, ScenarioError

if TYPE_CHECKING:  # imported where used, as the other badlab modules are
    from collections.abc import Iterator

    from badlab.scenario import Scenario

STATE_FILES = (
    "lab.json",
    "vars.yml",
    "kubeconfig",
    "kubeconfig-diagnose",
    "kubeconfig-watch",
    "pids",
    "lab.log",
    "control.sock",
)
# What `badlab step` may ask of the API server itself rather than of the pods:
# - expire_watches: end every open watch; new ones wait while the step `during` (if any) runs,
#   then the change history is forgotten, so a watch resuming from before gets 410 Gone and
#   must list again to learn what changed meanwhile;
# - restart_api: stop the API server (every connection drops), run `during` (if any), stay down
#   until `seconds` passed, start it again on the same address (clients must reconnect).
API_STEPS = {"expire_watches": {"during"}, "restart_api": {"seconds", "during"}}
STATE_DIRS = ("pods", "logs", "pki", "realk8s")
TIERS = ("emulated", "real")


# ----------------------------------------------------------------------------- process bookkeeping


@contextlib.contextmanager
def short_path(directory: Path, name: str) -> Iterator[str]:
    """``directory/name`` by a path a Unix socket accepts however deep ``directory`` is (a
    socket's path holds at most 107 bytes; pytest's temporary folders are longer): through
    ``/proc/self/fd`` of a descriptor of ``directory`` open while the path is used."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _inside(path: str | None, directory: Path) -> bool:
    return path is not None and (path == str(directory) or path.startswith(str(directory) + "/"))


def read_pids(lab_dir: Path) -> tuple[int | None, set[int]]:
    """(daemon pid, process groups) recorded in ``<dir>/pids``."""
    daemon, groups = None, set()
    with contextlib.suppress(OSError):
        for line in (lab_dir / "pids").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
                if parts[2] == "daemon":
                    daemon = int(parts[0])
                groups.add(int(parts[1]))
    return daemon, groups


def lab_processes(lab_dir: Path) -> list[int]:
    """PIDs of live processes of the lab in ``lab_dir``.

    A process is the lab's when its working directory is inside the lab directory and either
    it belongs to a process group the lab recorded (the daemon's, a container's) or it works in
    a pod directory (``<dir>/pods/…``, where only pod processes work).
    """
    lab_dir = lab_dir.resolve()
    daemon, groups = read_pids(lab_dir)
    pods_dir = lab_dir / "pods"
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        cwd = _cwd(pid)
        if not _inside(cwd, lab_dir):
            continue
        if _inside(cwd, pods_dir) or _pgid(pid) in groups or pid == daemon:
            found.append(pid)
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def running_daemon(lab_dir: Path) -> int | None:
    """The PID of this directory's lab daemon if it is running."""
    daemon, _ = read_pids(lab_dir)
    if daemon is not None and _alive(daemon) and _inside(_cwd(daemon), lab_dir.resolve()):
        return daemon
    return None


def stop_lab(lab_dir: Path, grace: float = 5.0) -> list[int]:
    """Stop everything the lab in ``lab_dir`` started; returns the PIDs that had to be signalled."""
    lab_dir = lab_dir.resolve()
    signalled: list[int] = []
    daemon = running_daemon(lab_dir)
    if daemon is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon, signal.SIGTERM)
            signalled.append(daemon)
        deadline = time.monotonic() + grace
        while _alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.02)
    for _ in range(50):
        left = [pid for pid in lab_processes(lab_dir) if _alive(pid)]
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if pid not in signalled:
                signalled.append(pid)
        time.sleep(0.02)
    else:
        raise LabError(f"processes of the lab in {lab_dir} survive SIGKILL: {left}")
    # The namespaces (bridge, veths, nftables table) went with their processes; the host's end
    # of the uplink is deleted now, so `ip link` shows nothing of the lab at once.
    from badlab.network import remove_host_links

    remove_host_links(lab_dir)
    return signalled


# ----------------------------------------------------------------------------- the daemon


def _selector_text(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _diagnose_rules(namespaces: list[str]) -> list[dict[str, Any]]:
    """Least privilege for the diagnose_502 role: read the objects, logs, exec, in these namespaces."""
    return [
        {
            "verbs": ["get", "list"],
            "resources": ["pods", "services", "endpoints", "events"],
            "apiGroups": [""],
            "namespaces": namespaces,
        },
        {
            "verbs": ["get", "list"],
            "resources": ["endpointslices"],
            "apiGroups": ["discovery.k8s.io"],
            "namespaces": namespaces,
        },
        {"verbs": ["get"], "resources": ["pods/log"], "apiGroups": [""], "namespaces": namespaces},
        {
            "verbs": ["create", "get"],
            "resources": ["pods/exec"],
            "apiGroups": [""],
            "namespaces": namespaces,
        },
    ]


def _watch_rules(namespaces: list[str]) -> list[dict[str, Any]]:
    """The drift watch (docs/eda.md): the diagnosis' rules and watch on pods and EndpointSlices."""
    return [
        *_diagnose_rules(namespaces),
        {"verbs": ["watch"], "resources": ["pods"], "apiGroups": [""], "namespaces": namespaces},
        {
            "verbs": ["watch"],
            "resources": ["endpointslices"],
            "apiGroups": ["discovery.k8s.io"],
            "namespaces": namespaces,
        },
    ]


class Control:
    """The daemon's side of ``badlab step``: one JSON request a connection on ``control.sock``
    (``{"step": <the step as written>}``), one JSON answer (``ok``, ``history`` of the step,
    ``started``/``ended`` as Unix times, or ``error``). Steps run one at a time."""

    def __init__(self, scenario: Scenario, runtime: Any, app_box: dict[str, Any]) -> None:
        self.scenario, self.runtime, self.box = scenario, runtime, app_box
        self.lock = asyncio.Lock()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            async with self.lock:
                answer = await self.run(request.get("step") if isinstance(request, dict) else None)
        except (ValueError, LabError) as exc:
            answer = {"ok": False, "error": str(exc)}
        writer.write((json.dumps(answer) + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def run(self, written: object) -> dict[str, Any]:
        from badlab.apiserver import end_watches, hold_watches, make_app, start_server
        from badlab.scenario import parse_steps

        started = time.time()
        seen = len(self.runtime.history)
        if isinstance(written, str) and written in API_STEPS:
            written = {written: {}}
        if isinstance(written, dict) and len(written) == 1 and next(iter(written)) in API_STEPS:
            ((action, args),) = written.items()
            if self.box.get("mirror") is not None:
                raise LabError(
                    f"--step: {action} acts on the emulated API server; this lab runs the real "
                    "tier (start it without TIER=real for this step)"
                )
            args = args or {}
            if not isinstance(args, dict) or set(args) - API_STEPS[action]:
                raise LabError(
                    f"--step: {action}: expected a mapping with at most the keys "
                    f"{', '.join(sorted(API_STEPS[action]))}, got {args!r}"
                )
            during = (
                parse_steps(self.scenario, [args["during"]], "--step") if "during" in args else []
            )
            for step in during:
                step.where = f"{action}.during"
            record: dict[str, Any] = {"step": action}
            if action == "expire_watches":
                hold_watches(self.box["app"], True)
                try:
                    record["ended_watches"] = end_watches(self.box["app"])
                    await self.runtime.run_timeline(during)
                    record["compacted_before"] = self.box["store"].compact()
                finally:
                    hold_watches(self.box["app"], False)
            else:
                seconds = args.get("seconds", 1)
                if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
                    raise LabError(
                        f"--step: restart_api.seconds: expected 0 to 60, got {seconds!r}"
                    )
                down = time.monotonic()
                await self.box["server"].close()
                try:
                    await self.runtime.run_timeline(during)
                    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - down)))
                finally:
                    app = make_app(self.box["store"], self.runtime, self.box["auth"])
                    self.box["server"] = await start_server(app, again=self.box["server"])
                    self.box["app"] = app
                record["down_seconds"] = round(time.monotonic() - down, 3)
            self.runtime.history.insert(seen, record)
        else:
            steps = parse_steps(self.scenario, [written], "--step")
            steps[0].where = "step"
            await self.runtime.run_timeline(steps)
            if self.box.get("mirror") is not None:
                self.box["mirror"].converged()
        return {
            "ok": True,
            "history": self.runtime.history[seen:],
            "started": started,
            "ended": time.time(),
        }


async def run_daemon(
    scenario: Scenario,
    lab_dir: Path,
    slot: int,
    port: int,
    ready_fd: int,
    owner_pid: int | None,
    tier: str = "emulated",
) -> None:
    """Run the lab until SIGTERM/SIGINT (or until the owner process exits)."""
    from badlab.apiserver import kubeconfig, make_app, start_server
    from badlab.rbac import Auth
    from badlab.runtime import Runtime
    from badlab.store import Store

    started = time.monotonic()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    store = Store()
    runtime = Runtime(scenario, lab_dir, slot, store)
    server = None
    real = None
    ca_file: Path | None
    try:
        admin, diagnose = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        watcher = secrets.token_urlsafe(32)
        auth = Auth(
            {
                admin: {"user": "lab-admin", "rules": None},
                diagnose: {"user": "diagnose-502", "rules": _diagnose_rules(scenario.namespaces)},
                watcher: {"user": "drift-watch", "rules": _watch_rules(scenario.namespaces)},
            }
        )
        box: dict[str, Any] = {"store": store, "auth": auth}
        if tier == "real":
            from badlab.realtier import RealTier

            real = RealTier(lab_dir, slot, runtime)
            box["mirror"] = real.mirror
            api_url, ca_file = real.plane.server, real.plane.ca_cert
        else:
            app = make_app(store, runtime, auth)
            server = await start_server(app, "127.0.0.1", port, tls_dir=lab_dir / "pki")
            box.update(app=app, server=server)
            api_url, ca_file = server.url, server.ca_file
        await runtime.start()
        await runtime.run_timeline()
        if real is not None:
            admin, diagnose, watcher = real.finish(scenario)
        with short_path(lab_dir, "control.sock") as sock_path:
            control = await asyncio.start_unix_server(
                Control(scenario, runtime, box).handle, path=sock_path
            )
        (lab_dir / "control.sock").chmod(0o600)
        ns = scenario.target["namespace"]
        for fname, token in (
            ("kubeconfig", admin),
            ("kubeconfig-diagnose", diagnose),
            ("kubeconfig-watch", watcher),
        ):
            path = lab_dir / fname
            path.write_text(
                yaml.safe_dump(kubeconfig(api_url, token, ca_file, namespace=ns), sort_keys=False)
            )
            path.chmod(0o600)
        proxy = scenario.proxy
        info = {
            "scenario": str(scenario.path),
            "name": scenario.name,
            "description": scenario.description,
            "slot": slot,
            "daemon_pid": os.getpid(),
            "tier": tier,
            "api_server": api_url,
            "kubeconfig": str(lab_dir / "kubeconfig"),
            "kubeconfig_diagnose": str(lab_dir / "kubeconfig-diagnose"),
            "kubeconfig_watch": str(lab_dir / "kubeconfig-watch"),
            "control": str(lab_dir / "control.sock"),
            "proxy_url": runtime.proxy_url(),
            "proxy_pods": runtime.proxy_pods(),
            "proxy_namespace": proxy["namespace"],
            "proxy_selector": _selector_text(proxy["selector"]),
            "service": f"{scenario.target['namespace']}/{scenario.target['service']}",
            "pods": {p.key: {"ip": p.ip, "uid": p.uid} for p in runtime.pods.values()},
            "cluster_ips": runtime.cluster_ips,
            "network": runtime.net.describe(),
            "history": runtime.history,
            "expect": scenario.expect,
            "log": str(lab_dir / "lab.log"),
            "up_seconds": round(time.monotonic() - started, 3),
        }
        if real is not None:
            info.update(real.describe())
        (lab_dir / "lab.json").write_text(json.dumps(info, indent=2) + "\n")
        variables = {
            "diagnose_502_proxy_namespace": proxy["namespace"],
            "diagnose_502_proxy_selector": _selector_text(proxy["selector"]),
            "diagnose_502_service_namespace": scenario.target["namespace"],
            "diagnose_502_service_name": scenario.target["service"],
            "diagnose_502_url": runtime.proxy_url(),
            "diagnose_502_kubeconfig": str(lab_dir / "kubeconfig"),
        }
        (lab_dir / "vars.yml").write_text(
            f"# Variables for the diagnose_502 role against the lab of {scenario.path}\n"
            + yaml.safe_dump(variables, sort_keys=False)
        )
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
        ready_fd = -1
        print(f"lab ready: {json.dumps(info)}", flush=True)
        if owner_pid is not None:
            try:
                owner = os.pidfd_open(owner_pid)
            except OSError:
                stop.set()
            else:
                loop.add_reader(owner, stop.set)
        await stop.wait()
        print("lab stopping", flush=True)
        control.close()
    except LabError as exc:
        if ready_fd >= 0:
            os.write(ready_fd, f"error: {exc}\n".encode())
        raise
    finally:
        await runtime.stop()
        if server is not None:
            await box["server"].close()
        if real is not None:
            real.stop()
        if ready_fd >= 0:
            os.close(ready_fd)


def _start_reaper(lab_dir: Path) -> None:
    """Fork the lab's reaper: it outlives the daemon for one purpose only.

    Container processes die with the daemon (PR_SET_PDEATHSIG), but what they fork does not:
    nginx workers outlive a master killed that way. The reaper holds the read end of a pipe
    whose write end only the daemon holds; when the daemon is gone, however it died (kill -9
    included), the read ends, and the reaper kills whatever of the lab is left, as
    ``badlab down`` would. It records itself in ``pids``, so ``down`` stops it too.
    """
    read_fd, write_fd = os.pipe()  # the daemon keeps write_fd open until it dies
    pid = os.fork()
    if pid == 0:
        os.close(write_fd)
        # Hold nothing of the daemon's open: `up` waits for the end of the readiness pipe.
        os.closerange(3, read_fd)
        os.closerange(read_fd + 1, 65536)
        code = 0
        try:
            os.setsid()
            while os.read(read_fd, 1):
                pass
            stop_lab(lab_dir, grace=0)
        except BaseException:  # noqa: BLE001 - the reaper logs what ended it, then exits
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(read_fd)
    with (lab_dir / "pids").open("a") as fh:
        fh.write(f"{pid} {pid} reaper lab\n")


def _daemonize(lab_dir: Path) -> None:
    """In the forked child: own session, work in the lab dir, log to lab.log."""
    os.setsid()
    os.chdir(lab_dir)
    log_fd = os.open(lab_dir / "lab.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the daemon's stdout
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def preflight() -> None:
    """The machine can run a lab: root (private mount namespaces), nginx and nsenter installed."""
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "the lab needs root (it gives each pod a private mount namespace); run it as root"
        )
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        problems.append(
            "nginx is not installed: apt-get install nginx-light (or run make system-deps)"
        )
    if not shutil.which("nsenter"):
        problems.append("nsenter is not installed: apt-get install util-linux")
    for name, package in (("ip", "iproute2"), ("nft", "nftables")):
        if not any(
            os.path.exists(f"{d}/{name}") for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
        ) and not shutil.which(name):
            problems.append(
                f"{name} is not installed: apt-get install {package} (the lab's network needs it)"
            )
    for target in (
        "/etc/nginx",
        "/run",
        "/var/log/nginx",
        "/var/lib/nginx",
        "/etc/hosts",
        "/etc/resolv.conf",
    ):
        if not os.path.exists(target):
            problems.append(
                f"{target} does not exist; the lab bind-mounts a pod's own copy over it"
            )
    if problems:
        raise LabError("cannot start a lab:\n  " + "\n  ".join(problems))


def cmd_up(args: argparse.Namespace) -> int:
    """Validate, fork the daemon, wait until it is ready."""
    from badlab.runtime import acquire_slot
    from badlab.scenario import load

    started = time.monotonic()
    if args.tier not in TIERS:
        raise LabError(
            f"--tier (or BADLAB_TIER): expected one of {', '.join(TIERS)}, got {args.tier!r}"
        )
    scenario = load(args.scenario)
    preflight()
    if args.tier == "real":
        from badlab.realtier import preflight_real

        preflight_real()
    lab_dir = Path(args.dir).resolve()
    lab_dir.mkdir(parents=True, exist_ok=True)
    daemon = running_daemon(lab_dir)
    if daemon is not None:
        raise LabError(
            f"a lab is already running in {lab_dir} (daemon PID {daemon}); "
            f"stop it first: python -m badlab down --dir {lab_dir}"
        )
    stop_lab(lab_dir)  # leftovers of a crashed lab in this directory
    for name in STATE_FILES:
        with contextlib.suppress(FileNotFoundError):
            (lab_dir / name).unlink()
    for name in STATE_DIRS:
        shutil.rmtree(lab_dir / name, ignore_errors=True)
    slot, lock_fd = acquire_slot()
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        code = 0
        try:
            _daemonize(lab_dir)
            (lab_dir / "pids").write_text(f"{os.getpid()} {os.getpgid(0)} daemon lab\n")
            _start_reaper(lab_dir)
            asyncio.run(
                run_daemon(scenario, lab_dir, slot, args.port, write_fd, args.owner_pid, args.tier)
            )
        except BaseException:  # noqa: BLE001 - the daemon logs whatever ended it, then exits
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    os.close(lock_fd)
    chunks = []
    try:
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
    except KeyboardInterrupt:
        stop_lab(lab_dir)
        raise LabError(f"interrupted; the lab in {lab_dir} was stopped") from None
    finally:
        os.close(read_fd)
    answer = b"".join(chunks).decode(errors="replace")
    if not answer.startswith("ready"):
        stop_lab(lab_dir)
        tail = ""
        with contextlib.suppress(OSError):
            tail = (lab_dir / "lab.log").read_text()[-3000:]
        detail = (
            answer.removeprefix("error: ").strip() or f"the lab daemon exited; its log:\n{tail}"
        )
        raise LabError(f"lab-up of {args.scenario} failed: {detail}\n(see {lab_dir / 'lab.log'})")
    info = json.loads((lab_dir / "lab.json").read_text())
    version = f" {info['server_version']}" if info.get("server_version") else ""
    print(f"lab up in {time.monotonic() - started:.2f} s: {scenario.path} (slot {info['slot']})")
    print(f"  proxy_url   {info['proxy_url']}")
    print(f"  proxy_pods  {', '.join(info['proxy_pods'])}")
    print(f"  api server  {info['api_server']} ({info['tier']}{version})")
    print(f"  export KUBECONFIG={info['kubeconfig']}")
    print(f"  variables   {lab_dir / 'vars.yml'}")
    print(f"  stop with   python -m badlab down --dir {lab_dir}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the lab of a directory (nothing to do is not an error)."""
    lab_dir = Path(args.dir).resolve()
    if not lab_dir.is_dir():
        print(f"no lab in {lab_dir} (the directory does not exist)")
        return 0
    signalled = stop_lab(lab_dir)
    print(
        f"lab in {lab_dir} stopped ({len(signalled)} process(es) signalled)"
        if signalled
        else f"no lab process running in {lab_dir}"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate scenario files without starting anything."""
    from badlab.scenario import load

    failed = 0
    for path in args.files:
        try:
            scenario = load(path)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            print(
                f"{path}: ok ({scenario.expect['cause']}, {len(scenario.pods)} pods, "
                f"{len(scenario.timeline)} steps)"
            )
    return 1 if failed else 0


def cmd_step(args: argparse.Namespace) -> int:
    """Run one timeline step in a running lab; print what it did (JSON)."""
    import socket

    lab_dir = Path(args.dir).resolve()
    try:
        written = yaml.safe_load(args.step)
    except yaml.YAMLError as exc:
        raise LabError(f"--step is not valid YAML: {exc}") from None
    if running_daemon(lab_dir) is None:
        raise LabError(f"no lab is running in {lab_dir}; start one with: python -m badlab up")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(args.timeout)
        try:
            with short_path(lab_dir, "control.sock") as sock_path:
                sock.connect(sock_path)
            sock.sendall((json.dumps({"step": written}) + "\n").encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:
            raise LabError(
                f"the lab in {lab_dir} did not answer on control.sock: {exc}; see {lab_dir / 'lab.log'}"
            ) from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise LabError(f"the lab in {lab_dir} gave no answer to the step; see lab.log") from None
    if not answer.get("ok"):
        print(f"error: {answer.get('error')}\nthe step was not run.", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m badlab``."""
    parser = argparse.ArgumentParser(prog="python -m badlab", description="The badgateway.k8s lab.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="start a scenario's lab in the background; returns when it is ready"
    )
    up.add_argument("--scenario", required=True, help="a file under tests/lab/scenarios/")
    up.add_argument(
        "--dir", required=True, help="the lab directory (kubeconfig, lab.json, vars.yml, logs)"
    )
    up.add_argument(
        "--port", type=int, default=0, help="API server port on 127.0.0.1 (0: any free port)"
    )
    up.add_argument(
        "--owner-pid",
        type=int,
        default=None,
        help="stop the lab when this process exits (the test fixture passes its own PID)",
    )
    up.add_argument(
        "--tier",
        choices=TIERS,
        default=os.environ.get("BADLAB_TIER") or "emulated",
        help="the API the lab's objects go to: this repository's emulated API server (default), "
        "or a real kube-apiserver with its controllers (make realk8s-build first; docs/lab.md)",
    )
    down = sub.add_parser("down", help="stop the lab of a directory, by the PIDs it recorded")
    down.add_argument("--dir", required=True)
    check = sub.add_parser("check", help="validate scenario files only")
    check.add_argument("files", nargs="+")
    step = sub.add_parser(
        "step",
        help="run one timeline step in a running lab, e.g. --step '{replace_pod: {pod: web-0}}'",
    )
    step.add_argument("--dir", required=True, help="the directory of a running lab")
    step.add_argument(
        "--step",
        required=True,
        help="one step as YAML: a timeline action of docs/lab.md, or expire_watches / "
        "restart_api: {seconds: N}",
    )
    step.add_argument("--timeout", type=float, default=120, help="seconds to wait for the step")
    args = parser.parse_args(argv)
    handler = {"up": cmd_up, "down": cmd_down, "check": cmd_check, "step": cmd_step}[args.command]
    try:
        return handler(args)
    except ScenarioError as exc:
        print(f"error: {exc}\nnothing was started.", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. head: the command itself did its work
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

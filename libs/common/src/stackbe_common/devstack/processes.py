"""Child processes with name-prefixed output (like foreman), stopped together as a group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

__all__ = ["Child", "ProcessGroup", "StartupError", "run_to_completion"]

STOP_TIMEOUT = 10.0
TAIL_LINES = 40


class StartupError(Exception):
    """Something the platform needs did not start; the message says what and shows why."""


class Child:
    """One long-running process; each output line is written as ``name | line``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        output: TextIO,
        lock: threading.Lock,
        width: int = 0,
        cwd: Path | None = None,
        health_url: str | None = None,
    ) -> None:
        self.name, self.argv, self.env, self.cwd = name, list(argv), dict(env), cwd
        self.health_url = health_url
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.expected_exit = False
        self._output, self._lock, self._width = output, lock, width
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._swept = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Child:
        """Start the process in its own session, so a terminal Ctrl-C reaches only the runner."""
        self.expected_exit, self._swept = False, False
        self._process = subprocess.Popen(
            self.argv,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._copy_output, args=(self._process,), name=f"out-{self.name}", daemon=True
        )
        self._reader.start()
        return self

    def _copy_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        label = f"{self.name:<{self._width}} | "
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tail.append(line)
            with self._lock:
                self._output.write(label + line + "\n")
                self._output.flush()
        process.stdout.close()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the child's whole process group (granian forks workers)."""
        if self._process is not None and not self._swept:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit and its output to be copied; return the exit code."""
        assert self._process is not None
        code = self._process.wait(timeout)
        if self._reader is not None:
            self._reader.join(5)
        return code

    def reap(self, timeout: float) -> None:
        """Wait for the exit (SIGKILL after ``timeout``), then sweep what is left of the group."""
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.wait()
        self.signal(signal.SIGKILL)
        self._swept = True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self._process is None:
            return
        self.expected_exit = True
        self.signal(signal.SIGTERM)
        self.reap(timeout)

    def kill(self) -> None:
        """SIGKILL the process group at once, as a crash would."""
        if self._process is None:
            return
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        self.reap(STOP_TIMEOUT)

    def restart(self, health_timeout: float = 60.0) -> None:
        self.stop()
        self.start()
        self.wait_healthy(health_timeout)

    def describe_failure(self, what: str) -> str:
        tail = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        return f"{self.name} {what}; its last output:\n{tail}"

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Poll ``health_url`` until it answers 200; fail fast if the process exits."""
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                self.wait()
                raise StartupError(self.describe_failure(f"exited with code {self.returncode}"))
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(self.health_url, timeout=1) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        what = f"did not answer {self.health_url} within {timeout:g}s"
        raise StartupError(self.describe_failure(what))


class ProcessGroup:
    """The children the runner started, by name, stopped together."""

    def __init__(self, output: TextIO | None = None, width: int = 0) -> None:
        self.output = output or sys.stdout
        self.width = width
        self.lock = threading.Lock()
        self.children: dict[str, Child] = {}

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
        health_url: str | None = None,
    ) -> Child:
        if name in self.children and self.children[name].running():
            raise ValueError(f"{name} is already running")
        child = Child(
            name,
            argv,
            env,
            output=self.output,
            lock=self.lock,
            width=self.width,
            cwd=cwd,
            health_url=health_url,
        )
        self.children[name] = child.start()
        return child

    def __getitem__(self, name: str) -> Child:
        try:
            return self.children[name]
        except KeyError:
            known = ", ".join(self.children) or "none"
            raise KeyError(f"no process named {name!r} (started: {known})") from None

    def exited_unexpectedly(self) -> Child | None:
        """The first child that exited without being asked to, if any."""
        for child in self.children.values():
            if not child.expected_exit and child.returncode is not None:
                return child
        return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every child at once, wait up to ``timeout`` in total, then SIGKILL the rest."""
        children = list(self.children.values())
        for child in children:
            child.expected_exit = True
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            if child.pid is not None:
                child.reap(max(deadline - time.monotonic(), 0.01))


def run_to_completion(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    output: TextIO,
    lock: threading.Lock,
    width: int = 0,
    timeout: float = 300.0,
) -> None:
    """Run a one-shot command (a migration) with prefixed output; fail with its tail."""
    child = Child(name, argv, env, output=output, lock=lock, width=width).start()
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        raise StartupError(child.describe_failure(f"did not finish in {timeout:g}s")) from None
    except BaseException:
        child.kill()
        raise
    if code != 0:
        raise StartupError(child.describe_failure(f"failed with exit code {code}"))

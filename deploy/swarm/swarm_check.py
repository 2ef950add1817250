"""Checks a deployed CodeCall stack through its load balancer (scripts/swarm-test.sh).

Only the public API and the Docker CLI are used:
  1. register and log in two users, befriend them, open a live session;
  2. the balancer appends X-Forwarded-For: a client spoofing the header on
     every attempt is still throttled after the per-account+address limit;
  3. both members' events sockets land on different api replicas (proved by
     the x-instance-id header of each WebSocket handshake); a run posted
     through the balancer streams to both sockets and finishes `accepted`;
  4. the worker's container is killed mid-run: Swarm restarts it and the run
     still finishes `accepted`;
  5. `docker service update --force` of the api under a steady request loop
     and with both sockets open: only 200s or retryable statuses
     (502/503/504), the sockets reconnect (to new replicas) and presence
     recovers (each socket sees both members).

Usage: swarm_check.py BASE_URL STACK WORKER_IDS_FILE
  WORKER_IDS_FILE: every worker container id seen is appended there, so the
  caller can remove sandbox containers a killed worker left behind.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

RETRYABLE = {502, 503, 504}
PASSWORD = "StrongPass123"


def log(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


class Http:
    """A tiny JSON client; every call opens its own connection."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method, path, token=None, body=None, headers=None, timeout=60):
        request = urllib.request.Request(self.base + path, method=method)
        if token:
            request.add_header("authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, data=data, timeout=timeout) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return error.code, dict(error.headers), parsed

    def ok(self, method, path, status, token=None, body=None):
        got, _, parsed = self.call(method, path, token, body)
        check(got == status, f"{method} {path}: {got} (want {status}): {parsed}")
        return parsed


class User:
    def __init__(self, http: Http, name: str):
        self.email = f"swarm-{uuid.uuid4().hex[:12]}@codecall.dev"
        self.name = name
        registered = http.ok("POST", "/auth/register", 201,
                             body={"name": name, "email": self.email, "password": PASSWORD})
        self.id = registered["user"]["id"]
        tokens = http.ok("POST", "/auth/login", 200,
                         body={"email": self.email, "password": PASSWORD})
        self.token = tokens["accessToken"]


class Socket:
    """A member's events socket that reconnects whenever it is closed, and
    keeps that member's view of the room: presence and the run events."""

    def __init__(self, ws_base: str, session: str, user: User):
        self.url = f"{ws_base}/api/sessions/{session}/events"
        self.user = user
        self.instances: list[str] = []  # x-instance-id of each handshake
        self.presence: set[str] = set()
        self.events: list[dict] = []
        self.connected = asyncio.Event()
        self.changed = asyncio.Event()
        self.ws = None
        self.stopping = False
        self.task: asyncio.Task | None = None

    @property
    def instance(self) -> str:
        return self.instances[-1]

    async def open(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 30)

    async def reopen(self) -> None:
        """Closes the current connection; the loop opens a new one."""
        self.connected.clear()
        await self.ws.close()
        await asyncio.wait_for(self.connected.wait(), 30)

    async def _run(self) -> None:
        while not self.stopping:
            try:
                async with connect(self.url, additional_headers={
                        "authorization": f"Bearer {self.user.token}"},
                        open_timeout=10, ping_interval=5, ping_timeout=10) as ws:
                    self.ws = ws
                    self.instances.append(ws.response.headers.get("x-instance-id", "?"))
                    self.presence = set()
                    self.connected.set()
                    async for frame in ws:
                        event = json.loads(frame)
                        kind = event.get("type")
                        if kind == "presence.snapshot":
                            self.presence = {u["userId"] for u in event["users"]}
                        elif kind == "presence.joined":
                            self.presence.add(event["user"]["userId"])
                        elif kind == "presence.left":
                            self.presence.discard(event["userId"])
                        self.events.append(event)
                        self.changed.set()
            except (ConnectionClosed, InvalidStatus, OSError, asyncio.TimeoutError):
                pass
            self.connected.clear()
            if not self.stopping:
                await asyncio.sleep(0.2)

    async def wait_for(self, predicate, what: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"{self.user.name}'s socket: no {what} within {timeout:.0f}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1))
            except asyncio.TimeoutError:
                pass

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def worker_containers(stack: str) -> list[str]:
    out = docker("ps", "-q", "--no-trunc", "--filter", f"label=com.docker.swarm.service.name={stack}_worker")
    return [line for line in out.splitlines() if line]


async def run_and_watch(http, user, session, sockets, source, stdin, on_started=None, timeout=90):
    """Posts a run in the session and waits until every socket saw it finish."""
    status, _, run = await asyncio.to_thread(
        http.call, "POST", "/api/runs", user.token,
        {"language": "python", "source": source, "stdin": stdin, "sessionId": session})
    check(status == 202, f"POST /api/runs: {status} {run}")
    run_id = run["id"]
    if on_started is not None:
        await sockets[0].wait_for(
            lambda e: e.get("type") == "run.started" and e.get("runId") == run_id,
            "run.started", timeout)
        await on_started(run_id)
    finished = []
    for socket in sockets:
        event = await socket.wait_for(
            lambda e: e.get("type") == "run.finished" and e["run"]["id"] == run_id,
            f"run.finished of {run_id}", timeout)
        finished.append(event["run"])
    return run_id, finished


async def main(base: str, stack: str, worker_ids_file: str) -> None:
    http = Http(base)
    ws_base = base.replace("http://", "ws://", 1)

    def note_workers():
        with open(worker_ids_file, "a") as f:
            for cid in worker_containers(stack):
                f.write(cid + "\n")

    note_workers()

    # 1. Users, friendship, a live session with two members.
    host, guest = User(http, "Host"), User(http, "Guest")
    request = http.ok("POST", "/api/friends/requests", 201, host.token, {"userId": guest.id})
    http.ok("POST", f"/api/friends/requests/{request['request']['id']}/accept", 200, guest.token)
    session = http.ok("POST", "/api/sessions", 201, host.token,
                      {"title": "Swarm", "language": "python", "inviteeIds": [guest.id]})["session"]["id"]
    invites = http.ok("GET", "/api/invites", 200, guest.token)["invites"]
    invite = next(i["id"] for i in invites if i["sessionId"] == session)
    http.ok("POST", f"/api/invites/{invite}/accept", 200, guest.token)
    http.ok("POST", f"/api/sessions/{session}/start", 200, host.token)
    log(f"registered two users through the balancer; live session {session}")

    # 2. X-Forwarded-For is appended by the balancer: spoofing it does not
    #    give a client fresh addresses for the login throttle.
    victim = User(http, "Victim")
    statuses = []
    for attempt in range(6):
        status, _, _ = http.call("POST", "/auth/login", body={"email": victim.email, "password": "wrong-password"},
                                 headers={"x-forwarded-for": f"203.0.113.{attempt + 1}"})
        statuses.append(status)
    check(statuses == [401] * 5 + [429],
          f"failed logins with a spoofed X-Forwarded-For: {statuses} (want five 401 then 429)")
    log("a spoofed X-Forwarded-For does not escape the login throttle (5x 401, then 429)")

    # 3. Sockets on two different replicas; a run streams to both.
    a = Socket(ws_base, session, host)
    b = Socket(ws_base, session, guest)
    await a.open()
    await b.open()
    for _ in range(20):
        if a.instance != b.instance:
            break
        await b.reopen()
    check(a.instance != b.instance, f"both sockets stayed on replica {a.instance}")
    log(f"events sockets on replicas {a.instance} and {b.instance} (x-instance-id of each handshake)")
    for s in (a, b):
        await s.wait_for(lambda e: e.get("type") == "presence.snapshot", "presence.snapshot")

    run_id, finished = await run_and_watch(
        http, host, session, [a, b], "print(input()[::-1])", "olleh\n")
    for s, run in zip((a, b), finished):
        check(run["verdict"] == "accepted" and run["stdout"] == "hello\n",
              f"{s.user.name} saw the run finish as {run['verdict']} / {run['stdout']!r}")
        output = [e for e in s.events if e.get("type") == "run.output" and e.get("runId") == run_id]
        check(any("hello" in e["data"] for e in output), f"{s.user.name} saw no run.output: {output}")
    log(f"run {run_id} streamed to both sockets and finished accepted")

    # 4. Kill the worker's container mid-run.
    killed = {}

    async def kill_worker(_run_id):
        ids = worker_containers(stack)
        check(len(ids) == 1, f"expected one worker container, found {ids}")
        killed["id"] = ids[0]
        docker("kill", ids[0])
        log(f"killed worker container {ids[0][:12]} mid-run")

    t0 = time.monotonic()
    run_id, finished = await run_and_watch(
        http, host, session, [a, b],
        "import time\nprint('started', flush=True)\ntime.sleep(3)\nprint(input())", "survived\n",
        on_started=kill_worker, timeout=150)
    for s, run in zip((a, b), finished):
        check(run["verdict"] == "accepted" and run["stdout"].endswith("survived\n"),
              f"after the kill, {s.user.name} saw {run['verdict']} / {run['stdout']!r}")
    note_workers()
    restarted = worker_containers(stack)
    check(restarted and killed["id"] not in restarted,
          f"Swarm did not replace the killed worker (now: {restarted})")
    log(f"Swarm restarted the worker ({restarted[0][:12]}); run {run_id} still finished accepted "
        f"after {time.monotonic() - t0:.0f}s")

    # 5. Rolling restart of the api under load, with both sockets open.
    before = (a.instance, b.instance)
    stop = threading.Event()
    results: dict[str, int] = {}
    failures: list[str] = []

    def request_loop():
        while not stop.is_set():
            try:
                status, _, _ = http.call("GET", f"/api/sessions/{session}", host.token, timeout=30)
                key = str(status)
            except Exception as error:  # noqa: BLE001 - every transport error counts
                key = type(error).__name__
                failures.append(repr(error))
            results[key] = results.get(key, 0) + 1
            time.sleep(0.02)

    loop = threading.Thread(target=request_loop, daemon=True)
    loop.start()
    t0 = time.monotonic()
    await asyncio.to_thread(docker, "service", "update", "--force", "--detach=false", "--quiet", f"{stack}_api")
    log(f"docker service update --force {stack}_api converged after {time.monotonic() - t0:.0f}s")
    await asyncio.sleep(3)
    stop.set()
    await asyncio.to_thread(loop.join)
    bad = {k: v for k, v in results.items() if k != "200" and not (k.isdigit() and int(k) in RETRYABLE)}
    check(not bad, f"requests during the rolling update: {results} (failures: {failures[:5]})")
    check(results.get("200", 0) > 50, f"too few requests went through during the update: {results}")
    log(f"requests during the rolling update: {results} (only 200 or retryable)")

    for s in (a, b):
        await asyncio.wait_for(s.connected.wait(), 30)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if all(s.presence == {host.id, guest.id} for s in (a, b)):
            break
        await asyncio.sleep(0.5)
    for s in (a, b):
        check(len(s.instances) >= 2, f"{s.user.name}'s socket was never reconnected: {s.instances}")
        check(s.presence == {host.id, guest.id},
              f"{s.user.name}'s presence after the update: {s.presence} (want both members)")
    check(a.instance not in before and b.instance not in before,
          f"sockets still on old replicas: {before} -> {(a.instance, b.instance)}")
    log(f"sockets reconnected ({len(a.instances) - 1} and {len(b.instances) - 1} times) to "
        f"{a.instance} and {b.instance}; presence shows both members again")

    # The room still works after the update.
    run_id, finished = await run_and_watch(http, guest, session, [a, b], "print(6 * 7)", "")
    check(all(r["verdict"] == "accepted" and r["stdout"] == "42\n" for r in finished),
          f"run after the update: {finished}")
    log(f"run {run_id} after the update streamed to both sockets, accepted")
    for s in (a, b):
        await s.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:4]))
    except Failure as failure:
        print(f"error: {failure}", file=sys.stderr)
        sys.exit(1)

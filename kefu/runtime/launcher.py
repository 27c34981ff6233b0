"""``python -m kefu.runtime.launcher``: start the whole product on one machine, stop it with Ctrl-C.

Starts what is missing — the embedded MongoDB (data in ``var/mongo``) unless
``MONGODB_URI`` is set, the embedded Redis (``var/redis``) unless ``REDIS_URL``
is set — then loads demo data on the first start, and runs the web app
(gunicorn), two rq workers (``WORKERS`` says why two) and the scheduler. Ctrl-C stops every process
it started, web and workers first, the databases last.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from kefu.core.config import (
    PROJECT_ROOT, ConfigError, embedded_secret_key, uri_hosts, var_dir, write_embedded_addresses,
)
from kefu.runtime.embedded import EmbeddedMongo, EmbeddedRedis, EmbeddedServerError, free_port, port_is_free
from kefu.runtime.startup import check_start
from kefu.schedule.queues import NOTIFY_QUEUE, QUEUE_NAMES, SCHEDULE_QUEUE
from seed.demo import DEMO_PASSWORD, DEMO_USERS

# The app's factory as gunicorn and ``flask --app`` are given it: the launcher only starts processes that build it.
APP_FACTORY = "app:create_app"
DEFAULT_WEB_PORT = 5000
PREFERRED_MONGO_PORT = 27117
PREFERRED_REDIS_PORT = 6479
# gunicorn's access log without the query string and the referrer (``%(r)s`` and ``%(f)s`` hold them): a list
# filtered or searched by phone number carries the number in its URL, and the log must not keep it.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
# The rq workers, each with the queues it serves in order. A worker runs one job at a time, and a centre's bulk work
# runs for minutes: an export of 100k rows, a deadline recompute after a calendar edit, the prompt sweep of an
# import of 10,000 records. With one worker, the tick and the minute's duties (the reminders) would wait behind it.
# So the first worker serves everything, the schedule first; the second only the schedule and the deliveries, so
# the duties start within seconds of their minute and emails and robot messages go out whatever bulk job runs.
# On two cores the second costs memory (~95 MB for its app, ~75 MB for rq's scheduler process beside it, measured)
# and no CPU while idle; both idle, either takes the tick. More bulk throughput needs more workers like the first.
WORKERS = (("worker", QUEUE_NAMES), ("worker-schedule", (SCHEDULE_QUEUE, NOTIFY_QUEUE)))


def say(message: str) -> None:
    print(f"[kefu] {message}", flush=True)


class Launcher:
    """The processes of one ``up``; ``stop`` ends them in reverse order of start."""

    def __init__(self) -> None:
        self.servers: list = []
        self.children: list[tuple[str, subprocess.Popen]] = []
        # The launcher runs before any app exists, so it reads its own environment: whether MONGODB_URI / REDIS_URL
        # / SECRET_KEY are given decides what it starts, and its children (and the app it prepares with) get the
        # result through their environment; every other setting is read by the app (kefu.core.config.Settings).
        self.env = dict(os.environ)

    # -- servers -----------------------------------------------------------
    def start_databases(self) -> bool:
        """Start embedded servers where no URI is configured; True when any is embedded."""
        embedded = {}
        if not self.env.get("MONGODB_URI"):
            mongo = EmbeddedMongo(var_dir() / "mongo", free_port(PREFERRED_MONGO_PORT))
            say(f"starting MongoDB ({mongo.port}, data in var/mongo) …")
            self.servers.append(mongo.start(timeout=60))
            embedded["MONGODB_URI"] = self.env["MONGODB_URI"] = mongo.uri_for("kefu")
        if not self.env.get("REDIS_URL"):
            redis = EmbeddedRedis(var_dir() / "redis", free_port(PREFERRED_REDIS_PORT))
            say(f"starting Redis ({redis.port}, data in var/redis) …")
            self.servers.append(redis.start())
            embedded["REDIS_URL"] = self.env["REDIS_URL"] = redis.url
        if embedded:
            write_embedded_addresses(embedded)
            self.env["KEFU_EMBEDDED"] = "1"
            self.env.setdefault("KEFU_DEMO", "1")
            if not self.env.get("SECRET_KEY"):
                self.env["SECRET_KEY"] = embedded_secret_key()
        return bool(embedded)

    # -- app ---------------------------------------------------------------
    def prepare_database(self) -> None:
        """Run ``flask kefu prepare`` (shipped types, calendar, templates, demo data on the first start …) and wait
        for it: the web app and the workers start on a prepared database. ``ConfigError`` in one line when the
        settings cannot work (``kefu.runtime.startup.check_start``: MongoDB or Redis not answering, a
        ``KEFU_DATA_KEY`` that does not read this database …) or the preparation failed."""
        check_start(self.env)
        prepared = subprocess.run([*self.flask_command(), "prepare"], env=self.env, cwd=PROJECT_ROOT)
        if prepared.returncode != 0:
            raise ConfigError("preparing the database failed; see the messages above")

    def flask_command(self) -> list[str]:
        """``flask --app app:create_app kefu``: the app is built in each child, never in the launcher."""
        return [sys.executable, "-m", "flask", "--app", APP_FACTORY, "kefu"]

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        # Own process group: Ctrl-C reaches only the launcher, which stops
        # children in order instead of everything dying at once.
        process = subprocess.Popen(command, env=self.env, cwd=PROJECT_ROOT, start_new_session=True)
        self.children.append((name, process))
        return process

    def start_web(self, port: int) -> None:
        workers = self.env.get("WEB_CONCURRENCY", "2")
        self.spawn("web", [sys.executable, "-m", "gunicorn", "--workers", workers, "--bind", f"127.0.0.1:{port}",
                           "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "--graceful-timeout", "10",
                           "--no-control-socket", f"{APP_FACTORY}()"])

    def worker_command(self, queues) -> list[str]:
        """``flask … kefu worker`` serving ``queues`` in order (one of ``WORKERS``)."""
        return [*self.flask_command(), "worker", *(f"--queue={queue}" for queue in queues), "--log-level", "WARNING"]

    def start_workers(self) -> None:
        for name, queues in WORKERS:
            self.spawn(name, self.worker_command(queues))

    def start_scheduler(self) -> None:
        self.spawn("scheduler", [*self.flask_command(), "scheduler", "--log-level", "WARNING"])

    def wait_until_healthy(self, port: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.children:
                if process.poll() is not None:
                    say(f"{name} exited with code {process.returncode}")
                    return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.3)
        return False

    def watch(self) -> int:
        """Block until a child exits on its own; return its exit code."""
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    say(f"{name} stopped unexpectedly (code {process.returncode}); stopping everything")
                    return process.returncode or 1
            time.sleep(0.5)

    def stop(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.children):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        for server in reversed(self.servers):
            server.stop()
        self.children.clear()
        self.servers.clear()


def already_running() -> int | None:
    """The pid of a launcher that is still running from this folder, if any."""
    try:
        pid = int((var_dir() / "launcher.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def web_port() -> int:
    """The web app's port: ``KEFU_PORT`` (launcher-only, read from this process's environment), else 5000, else a
    free one."""
    requested = os.environ.get("KEFU_PORT")
    if requested:
        if not requested.isdigit():
            raise ConfigError(f"KEFU_PORT={requested!r} should be a port number, e.g. 5000")
        port = int(requested)
        if not port_is_free(port):
            raise ConfigError(f"port {port} (KEFU_PORT) is already in use: choose another with KEFU_PORT=…")
        return port
    if port_is_free(DEFAULT_WEB_PORT):
        return DEFAULT_WEB_PORT
    port = free_port()
    say(f"port {DEFAULT_WEB_PORT} is already in use; using {port} instead (set KEFU_PORT to choose)")
    return port


def up() -> int:
    """Run the product until Ctrl-C; return the process exit code."""
    running = already_running()
    if running:
        say(f"kefu is already running from this folder (pid {running}); stop it with Ctrl-C first")
        return 1
    started = time.monotonic()
    launcher = Launcher()

    def request_stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    pid_file = var_dir() / "launcher.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    try:
        port = web_port()
        demo = launcher.start_databases()
        launcher.prepare_database()
        launcher.start_web(port)
        launcher.start_workers()
        launcher.start_scheduler()
        if not launcher.wait_until_healthy(port):
            say("the web app did not become healthy; see the messages above")
            return 1
        print_banner(port, demo, time.monotonic() - started, launcher.env)
        return launcher.watch()
    except KeyboardInterrupt:
        return 0
    except (ConfigError, EmbeddedServerError) as exc:
        say(f"cannot start: {exc}")
        return 1
    finally:
        if launcher.children or launcher.servers:
            say("stopping …")
            launcher.stop()
            say("stopped")
        pid_file.unlink(missing_ok=True)


def print_banner(port: int, demo: bool, seconds: float, env: dict) -> None:
    lines = [
        "",
        f"  kefu 客服管理系统 is running (ready in {seconds:.1f} s)",
        f"  URL:      http://127.0.0.1:{port}/admin/",
        f"  MongoDB:  {uri_hosts(env['MONGODB_URI'])}    Redis: {uri_hosts(env['REDIS_URL'])}",
    ]
    if env.get("KEFU_DEMO") == "1":
        lines.append(f"  demo logins (password {DEMO_PASSWORD}):")
        for username, display_name, role, department in DEMO_USERS:
            lines.append(f"    {username:<11} {display_name}（{department}）")
    lines += ["  Stop with Ctrl-C.", ""]
    print("\n".join(lines), flush=True)


def main(argv: list[str]) -> int:
    if argv[1:] != ["up"]:
        print("usage: python -m kefu.runtime.launcher up", file=sys.stderr)
        return 2
    return up()


if __name__ == "__main__":
    sys.exit(main(sys.argv))

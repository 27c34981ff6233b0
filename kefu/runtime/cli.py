"""``flask --app app kefu …``: operator commands. They call the same services as the web app."""
from __future__ import annotations

import csv
import time
from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup
from redis.exceptions import RedisError
from rq.cron import CronScheduler

from jobs.deliver import dispatch
from jobs.schedule import tick
from kefu.calendar.workcalendar import load_entries, seed_calendar
from kefu.core.errors import DomainError
from kefu.notify.reminders import sweep
from kefu.org.users import create_user
from kefu.records.definitions import load_shipped_types
from kefu.runtime.keys import DEFAULT_BATCH_SIZE, rotate_data_key
from kefu.runtime.prepare import prepare_database
from kefu.runtime.worker import KefuWorker
from kefu.schedule.queues import QUEUE_NAMES, SCHEDULE_QUEUE
from seed.demo import seed_demo
from seed.records import seed_demo_records

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EVERY_MINUTE = "* * * * *"

kefu_cli = AppGroup("kefu", help="kefu 客服管理：运维命令 / operator commands")


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


@kefu_cli.command("prepare")
def prepare_command():
    """What every start does first (idempotent): shipped types, the calendar, templates, reminder schedules and
    search grams of earlier records; demo data into an empty database when KEFU_DEMO=1."""
    counts = prepare_database(current_app.config["KEFU_DEMO"], lambda message: click.echo(f"[kefu] {message}"))
    if counts:
        click.echo("[kefu] demo data: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


@kefu_cli.command("create-user")
@click.option("--username", required=True, help="登录名 / login name")
@click.option("--password", required=True, help="密码（至少 8 位）/ password (8+ characters)")
@click.option("--role", "roles", required=True, multiple=True,
              help="admin / manager / supervisor / agent / handler / approver（可重复 / repeatable）")
@click.option("--department", default=None, help="部门名称 / department name")
@click.option("--name", "display_name", default=None, help="姓名 / display name")
def create_user_command(username, password, roles, department, display_name):
    """Create a user account."""
    roles = [role for value in roles for role in value.split(",") if role]
    try:
        user = create_user(username, password, roles, department=department, display_name=display_name)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created user {user.username} ({', '.join(user.roles)})")


@kefu_cli.command("seed")
def seed_command():
    """Load the demo data (idempotent: running it again adds nothing)."""
    counts = seed_demo()
    click.echo("demo data: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


@kefu_cli.command("seed-records")
def seed_records_command():
    """Load six weeks of demo records (complaints, consultations, repairs) into an empty records collection."""
    started = time.monotonic()
    count = seed_demo_records()
    click.echo(f"demo records: {count or 'none added (records exist already)'} ({time.monotonic() - started:.1f} s)")


@kefu_cli.command("load-types")
def load_types_command():
    """Create the shipped record types (schemas/) that do not exist yet; never overwrites edits."""
    created = load_shipped_types()
    click.echo(f"record types created: {', '.join(created) or 'none'}")


@kefu_cli.command("load-calendar")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV：日期或“开始..结束”,holiday|workday,名称（如 2027-10-01..2027-10-07,holiday,国庆节）/ "
                   "CSV rows: date or first..last, holiday|workday, name")
def load_calendar_command(path):
    """Enter the working-day calendar: the chinesecalendar package's years not seeded yet (never overwrites
    edits, never re-adds deleted days), or with --file a year the State Council has just published."""
    if path is None:
        started = time.monotonic()
        created = seed_calendar()
        click.echo(f"calendar entries created: {created} ({time.monotonic() - started:.2f} s)")
        return
    rows, numbers = [], []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) != 3:
                _fail(f"line {number}: expected 3 columns (date or first..last, holiday|workday, name), got {len(row)}")
            when, kind, name = (cell.strip() for cell in row)
            first, _sep, last = when.partition("..")
            try:
                rows.append((date.fromisoformat(first.strip()), date.fromisoformat((last or first).strip()), kind, name))
                numbers.append(number)
            except ValueError:
                _fail(f"line {number}: {when!r} is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)")
    try:
        written = load_entries(rows, by="cli", numbers=numbers)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"calendar days written: {written}")


@kefu_cli.command("rotate-key")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="每批重新加密的文档数 / documents re-encrypted per write")
def rotate_key_command(batch_size):
    """Re-encrypt every stored personal value with KEFU_DATA_KEY (the new key; the old one in KEFU_DATA_KEY_OLD),
    recomputing blind indexes, in batches with progress. Idempotent: run it again after a stop to finish."""
    cipher = current_app.extensions["kefu_cipher"]
    try:
        left = rotate_data_key(cipher, click.echo, batch_size)
    except DomainError as exc:
        _fail(exc)
    if left:
        _fail(f"{left} documents changed while they were re-encrypted; run the command again")
    click.echo(f"every encrypted value is under key id {cipher.key_id}; KEFU_DATA_KEY_OLD can be removed now")


@kefu_cli.command("worker")
@click.option("--queue", "queues", multiple=True, default=QUEUE_NAMES, show_default=True,
              help="Served in this order: a job of the first queue with one waiting comes next.")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
              help="Also move retried and delayed jobs to their queue when due (rq's scheduler, locked per queue).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="INFO", show_default=True,
              help="WARNING: only problems, not every job.")
def worker_command(queues, burst, with_scheduler, log_level):
    """Run an rq worker that keeps this app (and its MongoDB connection) for every job — no fork, no app start per
    job; it serves the ``schedule`` queue first (the tick and the duties); its scheduler comes back within a minute
    of a Redis outage, and a job that ends during one does not stop it (``kefu.runtime.worker``).
    Waits while Redis is unreachable at start."""
    connection = current_app.extensions["kefu_redis"]
    while True:
        try:
            connection.ping()
            break
        except RedisError as exc:
            click.echo(f"worker: Redis unreachable ({exc}); retrying in 5 s", err=True)
            time.sleep(5)
    worker = KefuWorker(list(queues), connection=connection,
                        lease_seconds=current_app.config["KEFU_WORKER_LEASE_SECONDS"])
    worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=log_level)


@kefu_cli.command("scheduler")
@click.option("--interval", type=int, default=None, help="Seconds between ticks (default KEFU_TICK_SECONDS or 60).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="INFO", show_default=True)
def scheduler_command(interval, log_level):
    """Run the scheduler: every interval it queues ``jobs.schedule.tick`` on the ``schedule`` queue; the tick claims
    the duties that are due (kefu.schedule.duties) and hands out deliveries. At the default of a minute the tick
    is queued at the start of each minute, when the minute's duties fall due (any other interval counts from the
    start). Several schedulers may run: each occurrence is claimed once.
    Waits and starts again while Redis is unreachable."""
    interval = interval or int(current_app.config.get("KEFU_TICK_SECONDS") or 60)
    every = {"cron": EVERY_MINUTE} if interval == 60 else {"interval": interval}
    while True:
        try:
            cron = CronScheduler(connection=current_app.extensions["kefu_redis"], logging_level=log_level)
            cron.register(tick, SCHEDULE_QUEUE, job_timeout=120, result_ttl=600, **every)
            cron.start()
            return
        except RedisError as exc:
            click.echo(f"scheduler: Redis unreachable ({exc}); retrying in 5 s", err=True)
            time.sleep(5)


@kefu_cli.command("sweep")
def sweep_command():
    """Run one SLA sweep in the foreground and print what it did (alerts, notifications, deliveries)."""
    started = time.monotonic()
    result = sweep()
    click.echo(f"{result.text()} ({time.monotonic() - started:.2f} s)")
    click.echo(f"deliveries handed to the workers: {dispatch()}")

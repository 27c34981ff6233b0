"""gunicorn's settings for kefu, read from the folder gunicorn starts in (``gunicorn 'app:create_app()'`` there, as
the launcher runs it) or named from anywhere (``gunicorn -c /path/to/kefu/gunicorn.conf.py --chdir /path/to/kefu
'app:create_app()'``): before any worker builds the app, the master checks the settings
(``kefu.runtime.startup.check_start``), so a setting that cannot work is one line — ``[kefu] cannot start: …`` —
and exit code 1, not a traceback from every worker.

The workers are chosen for a machine of 2 cores by ``bench/load_bench.py --sweep`` (README, "Production web
server", has the figures): three synchronous workers — each request has a process to itself, so no request waits
for another's share of a Python lock, and one more process than cores keeps both cores busy while a request waits
on MongoDB. ``WEB_CONCURRENCY`` sets the number of processes (as for any gunicorn). ``./kefu.sh up``, which runs
MongoDB, Redis and two rq workers on the same cores as well, passes its own count (2 unless ``WEB_CONCURRENCY``)."""
import gc
import os
import sys
from pathlib import Path

# gunicorn reads this file before it applies --chdir, so from another folder ``kefu`` is importable only once the
# checkout this file lives in is on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kefu.core.config import ConfigError  # noqa: E402
from kefu.runtime.startup import check_start  # noqa: E402

worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or 3)


def on_starting(server):
    try:
        check_start(redis=False)
    except ConfigError as exc:
        exc.show()
        sys.exit(1)


def post_worker_init(worker):
    """The app is built: what it loaded lives as long as the worker, so the collector stops scanning it (a full
    collection otherwise walks every object of the app, a millisecond or two of a request's time)."""
    gc.collect()
    gc.freeze()

"""gunicorn's settings for kefu, read from the folder gunicorn starts in (``gunicorn 'app:create_app()'`` there, as
the launcher runs it): before any worker builds the app, the master checks the settings
(``kefu.runtime.startup.check_start``), so a setting that cannot work is one line — ``[kefu] cannot start: …`` —
and exit code 1, not a traceback from every worker."""
import sys

from kefu.core.config import ConfigError
from kefu.runtime.startup import check_start


def on_starting(server):
    try:
        check_start(redis=False)
    except ConfigError as exc:
        exc.show()
        sys.exit(1)

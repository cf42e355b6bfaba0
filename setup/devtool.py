"""Shared plumbing of the two developer commands, ``setup/test`` and ``setup/run``.

Both need the same things before Odoo starts: Odoo 19 importable, PostgreSQL
reachable with a role that may create databases, our Python requirements
installed, and an addons path made of Odoo's own addons, the OCA addons that
pip installed (queue_job) and ours. This module finds and checks all of that
and says precisely what is missing when something is.
"""

import contextlib
import functools
import http.cookiejar
import importlib.util
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADDONS_DIR = REPO / "addons"
TESTS_DIR = REPO / "tests"
REQUIREMENTS = REPO / "requirements.txt"

# One Odoo log record starts with: date time pid LEVEL dbname logger: message
LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL|RUNBOT|TEST) "
    r"(?P<db>\S+) (?P<logger>[\w.\-]+): (?P<message>.*)$"
)


class PrerequisiteError(Exception):
    """A prerequisite is missing; the message tells the developer what to do."""


def say(message=""):
    print(message, flush=True)


def fail(message):
    say(f"\nERROR: {message}")
    sys.exit(2)


# --- prerequisites ----------------------------------------------------------


def check_odoo():
    """Return the Odoo source's own addons directories; raise if Odoo 19 is absent."""
    try:
        import odoo.release  # noqa: PLC0415 - the check is the import itself
    except ImportError as exc:
        raise PrerequisiteError(
            f"`import odoo` fails for {sys.executable} ({exc}).\n"
            "Odoo 19 is a prerequisite, not a requirement line. Provide it with:\n"
            "  git clone --depth 1 --branch 19.0 https://github.com/odoo/odoo <odoo-src>\n"
            "  python3 -m pip install -r <odoo-src>/requirements.txt\n"
            "  python3 -m pip install --no-deps -e <odoo-src> "
            "--config-settings editable_mode=compat\n"
            "then run this command again."
        ) from exc
    if odoo.release.version_info[0] != 19:
        raise PrerequisiteError(
            f"`import odoo` gives Odoo {odoo.release.version}, these addons need Odoo 19.0."
        )
    try:
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        version("odoo")
    except PackageNotFoundError as exc:
        raise PrerequisiteError(
            "Odoo 19 imports but is not registered as the `odoo` distribution, so pip "
            "cannot satisfy the OCA addons' dependency on it. Register it with:\n"
            "  python3 -m pip install --no-deps -e <odoo-src> "
            "--config-settings editable_mode=compat"
        ) from exc
    roots = {Path(p).resolve().parent for p in odoo.__path__}
    return [str(root / "addons") for root in sorted(roots) if (root / "addons").is_dir()]


def check_gevent():
    """Check that Odoo's gevent worker (started with ``--workers``) can start.

    It monkey-patches with gevent first, and gevent's plugin loading asks
    pkg_resources for its dependencies: an old setuptools cannot find
    ``zope.interface`` / ``zope.event`` installed under their newer normalised
    names, and the worker dies at start, again and again.
    """
    proc = subprocess.run(
        [sys.executable, "-c", "from gevent import monkey; monkey.patch_all()"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PrerequisiteError(
            "Odoo's gevent worker cannot start with this Python: gevent's monkey "
            f"patching fails with\n  {last}\n"
            "When it names zope.interface or zope.event, this setuptools' pkg_resources "
            "does not read their current metadata; install releases it reads, e.g.:\n"
            "  python3 -m pip install 'zope.interface==6.4.post2' 'zope.event==5.0'"
        )


def pg_target():
    """Describe where libpq will connect, the way Odoo will (PG* variables)."""
    host = os.environ.get("PGHOST") or "the local socket"
    port = os.environ.get("PGPORT") or "5432"
    user = os.environ.get("PGUSER") or _os_user()
    return f"{host} port {port} as role {user!r}"


def _os_user():
    import pwd  # noqa: PLC0415 - POSIX only, imported where used

    return pwd.getpwuid(os.getuid()).pw_name


def check_postgres():
    """Connect as Odoo will and check the role may create databases."""
    import psycopg2  # noqa: PLC0415 - Odoo's requirement, present once Odoo is

    user = os.environ.get("PGUSER") or _os_user()
    if user == "postgres":
        raise PrerequisiteError(
            "Odoo refuses to run as the `postgres` role. Set PGUSER to a role that "
            "may create databases (for example: createuser --createdb $USER)."
        )
    try:
        cnx = psycopg2.connect(dbname="postgres", connect_timeout=5)
        with contextlib.closing(cnx), cnx.cursor() as cr:
            cr.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cr.fetchone()
    except psycopg2.OperationalError as exc:
        raise PrerequisiteError(
            f"PostgreSQL is unreachable: tried {pg_target()}, database 'postgres'.\n"
            f"  {str(exc).strip()}\n"
            "Start PostgreSQL, or point PGHOST / PGPORT / PGUSER at a running server."
        ) from exc
    if not row or not row[0]:
        raise PrerequisiteError(
            f"PostgreSQL role {user!r} may not create databases "
            f"(ALTER ROLE {user} CREATEDB, as a superuser)."
        )


# What Odoo's test runner looks for on Linux to run tours (odoo.tests.common).
BROWSERS = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")


def browser():
    """The headless browser Odoo's tours will use, or None."""
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    return None


def ensure_browser():
    """Make sure the tours have a browser: install Debian's chromium when missing.

    Without one, Odoo skips every tour: the UI paths would pass untested.
    """
    if found := browser():
        return found
    apt = shutil.which("apt-get")
    if not apt or os.geteuid() != 0:
        raise PrerequisiteError(
            "No Chrome or Chromium found: the tours (UI tests in a headless browser) "
            "need one. Install Debian's package as root:\n  apt-get install -y chromium"
        )
    say("== No Chrome or Chromium found: installing Debian's chromium for the tours")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt_get(*args):
        return subprocess.run([apt, *args], stdout=subprocess.DEVNULL, env=env, check=False)

    proc = apt_get("install", "-y", "-q", "chromium")
    if proc.returncode:  # a machine whose package lists are stale or empty
        apt_get("update", "-q")
        proc = apt_get("install", "-y", "-q", "chromium")
    if proc.returncode or not browser():
        raise PrerequisiteError(
            f"apt-get could not install chromium (exit {proc.returncode}); the tours "
            "need it. Install it by hand: apt-get install -y chromium"
        )
    say(f"   installed {browser()}")
    return browser()


def install_requirements():
    say("== Installing requirements.txt")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if os.geteuid() == 0:
        cmd.append("--root-user-action=ignore")
    proc = subprocess.run([*cmd, "-r", str(REQUIREMENTS)], check=False)
    if proc.returncode:
        fail(f"pip could not install {REQUIREMENTS.name} (exit {proc.returncode}); see above.")


def oca_addons_dir():
    """Directory where pip put the OCA addons (queue_job), to add to the addons path."""
    spec = importlib.util.find_spec("odoo.addons.queue_job")
    if not spec or not spec.origin:
        raise PrerequisiteError(
            "queue_job is not installed although requirements.txt was installed: "
            "check the pip output above."
        )
    return str(Path(spec.origin).resolve().parent.parent)


def prerequisites(install=True, multi_worker=False, tours=False):
    """Check everything, install the requirements, return the addons path list.

    ``multi_worker``: Odoo will run with ``--workers``, check its gevent worker too.
    ``tours``: the tests will run tours, install a headless browser when missing.
    """
    try:
        odoo_addons = check_odoo()
        odoo_launcher()
        check_postgres()
        if install:
            install_requirements()
        if multi_worker:
            check_gevent()
        if tours:
            ensure_browser()
        return [*odoo_addons, oca_addons_dir(), str(ADDONS_DIR)]
    except PrerequisiteError as exc:
        fail(str(exc))


# --- modules ----------------------------------------------------------------


def modules_in(folder):
    """Names of the Odoo modules directly under ``folder``, sorted."""
    return sorted(p.parent.name for p in Path(folder).glob("*/__manifest__.py"))


def product_modules():
    return modules_in(ADDONS_DIR)


def test_modules():
    """Test-only modules under tests/ (cross-module tests), installed only when testing."""
    return modules_in(TESTS_DIR)


# --- processes --------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@functools.cache
def odoo_launcher():
    """How to start Odoo: its console script, as a list to put before the arguments.

    Not ``python -m odoo``: with ``--workers`` Odoo's prefork server starts its
    gevent worker as ``sys.executable sys.argv[0] gevent ...``, and ``sys.argv[0]``
    must then be a script that starts Odoo, not ``odoo/__main__.py``. Looks for the
    ``odoo`` console script beside this Python first (the one pip wrote for it),
    then on the PATH, then for ``odoo-bin`` at the root of the Odoo source tree.
    """
    beside = Path(sys.executable).with_name("odoo")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which("odoo")
    if on_path:
        return [on_path]
    try:
        import odoo  # noqa: PLC0415 - only to find its source tree

        roots = [Path(p).resolve().parent for p in odoo.__path__]
    except ImportError:
        roots = []
    for root in roots:
        if (root / "odoo-bin").is_file():
            # Its shebang may name another Python than ours: run it with ours.
            return [sys.executable, str(root / "odoo-bin")]
    raise PrerequisiteError(
        f"No `odoo` command for {sys.executable}: neither {beside}, nor `odoo` on the "
        "PATH, nor `odoo-bin` in the Odoo source tree. Multi-worker Odoo restarts "
        "itself from that script. Install Odoo so that pip writes it:\n"
        "  python3 -m pip install --no-deps -e <odoo-src> "
        "--config-settings editable_mode=compat"
    )


def odoo_command(*args):
    """The command line that runs Odoo with ``args`` (see :func:`odoo_launcher`)."""
    return [*odoo_launcher(), *args]


def python_env():
    """Environment of Odoo processes: the repository's tests/ importable (simulators)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def interrupt(signum, _frame):
    """Signal handler: turn SIGTERM into the same clean stop as Ctrl-C."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop(proc, timeout=30):
    """Stop a child we started: SIGINT (Odoo's graceful stop), then SIGKILL."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# --- databases --------------------------------------------------------------


def database_exists(name):
    import psycopg2  # noqa: PLC0415

    with contextlib.closing(psycopg2.connect(dbname="postgres")) as cnx, cnx.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return bool(cr.fetchone())


def installed_modules(dbname, names):
    import psycopg2  # noqa: PLC0415

    with contextlib.closing(psycopg2.connect(dbname=dbname)) as cnx, cnx.cursor() as cr:
        cr.execute(
            "SELECT name FROM ir_module_module WHERE state = 'installed' AND name IN %s",
            (tuple(names),),
        )
        return {row[0] for row in cr.fetchall()}


def drop_database(name):
    """Drop a database we created, closing any connection left to it."""
    import psycopg2  # noqa: PLC0415
    from psycopg2 import sql  # noqa: PLC0415

    cnx = psycopg2.connect(dbname="postgres")
    cnx.autocommit = True
    with contextlib.closing(cnx), cnx.cursor() as cr:
        cr.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        cr.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


class RpcError(Exception):
    """An error answered by Odoo's JSON-RPC (its message and remote traceback)."""


class Rpc:
    """JSON-RPC to Odoo as a user (admin/admin by default), the web client's way.

    ``rpc("res.partner", "search_count", [])`` calls the model method like
    ``execute_kw``, through ``/web/dataset/call_kw`` in a session opened by
    ``/web/session/authenticate``. Not ``/jsonrpc``: Odoo 19 logs a
    deprecation WARNING on every call to it (removal announced for Odoo 22),
    and a warning fails the suite.
    """

    def __init__(self, url, dbname, login="admin", password="admin", timeout=60):
        self.url = url
        self.dbname = dbname
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        session = self.post(
            "/web/session/authenticate", {"db": dbname, "login": login, "password": password}
        )
        self.uid = (session or {}).get("uid")
        if not self.uid:
            raise RpcError(f"login {login!r} refused by database {dbname}")

    def post(self, path, params):
        """One JSON-RPC request to ``path``; its result, or :class:`RpcError`."""
        payload = {"jsonrpc": "2.0", "method": "call", "params": params, "id": next(self._ids)}
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=self.timeout) as response:
            answer = json.loads(response.read())
        if answer.get("error"):
            error = answer["error"]
            data = error.get("data") or {}
            raise RpcError(data.get("message") or error.get("message") or str(error))
        return answer.get("result")

    def __call__(self, model, method, *args, **kwargs):
        return self.post(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

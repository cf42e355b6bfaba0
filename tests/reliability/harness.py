"""The harness of the reliability suite and of the server benchmarks.

A real Odoo as production runs it: a database of its own with every product
addon installed, then the server started with the ``odoo`` console script,
several HTTP workers, a cron worker and queue_job's job runner; beside it the
Shopify simulator (a thread of this process) to which the database is
connected as an administrator would connect it. The server logs to a file
that :class:`LogWatch` follows: a WARNING or ERROR record that the running
phase does not allow is a problem.

Scenarios use the primitives here: :class:`Rpc` (JSON-RPC as admin),
:class:`Sql` (read-only SQL), :func:`wait_until`, :func:`shopify_delivery` and
:func:`post` (signed webhooks), :meth:`OdooServer.workers`,
:meth:`OdooServer.kill_worker`, :meth:`OdooServer.restart`.

The commands put ``setup/`` (devtool, demo) and ``tests/`` (simulators) on
``sys.path`` before importing this module.
"""

import collections
import contextlib
import http.client
import http.cookiejar
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import demo
import devtool
import forwarder
from devtool import Rpc, RpcError  # noqa: F401 - the scenarios' and benchmarks' name for them

SHOPIFY_WEBHOOK_ROUTE = "/connector/shopify/webhook"
# The topics the Shopify backend processes, hence subscribes to (its
# _connector_topics): the simulated store sends these only, as Shopify would.
SHOPIFY_SUBSCRIBED_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "refunds/create",
)
# A worker announcing itself: "Worker WorkerHTTP (1234) alive".
WORKER_ALIVE = re.compile(r"^Worker (?P<klass>\w+) \((?P<pid>\d+)\) alive")
WORKER_KINDS = {"WorkerHTTP": "http", "WorkerCron": "cron", "WorkerJobRunner": "jobrunner"}
PROBLEM_LEVELS = ("WARNING", "ERROR", "CRITICAL")
# The prefork master replaces a killed worker within seconds.
RESPAWN_TIMEOUT = 20
# What killing a job's worker with SIGKILL logs, and nothing more, in the
# scenarios that do it:
# - the runner requeues the dead job (WARNING);
# - its request to run that job failed, when the worker died before the
#   runner stopped waiting for the answer (ERROR);
# - while a worker is down, the other one runs a long job and the requests to
#   run others wait on it: past the runner's 10 s a waiting job counts as
#   dead and is asked for again, and the request that comes second finds it
#   run or running (WARNING of queue_job's controller; the job's lock keeps
#   it from running twice);
# - queue_job's own race (OCA/queue#858): a job that waited past those 10 s
#   may be requeued while it starts; it runs, its "done" meets the requeue's
#   update (ERROR of the failed query) and it runs once more. The jobs of the
#   connectors run twice to the same end: the scenarios count what was
#   applied.
WORKER_KILL_LOG = (
    r"WARNING odoo\.addons\.queue_job\.jobrunner\.runner: "
    r"Re-queued dead job with uuid: [0-9a-f-]+",
    r"ERROR odoo\.addons\.queue_job\.jobrunner\.runner: exception in GET "
    r"http://127\.0\.0\.1:\d+/queue_job/runjob\?job_uuid=[0-9a-f-]+",
    r"WARNING odoo\.addons\.queue_job\.controllers\.main: was requested to run job "
    r"[0-9a-f-]+, but it (could not be locked|does not exist, or is not in state "
    r"enqueued, or is being handled by another worker)",
    r"(?s)ERROR odoo\.sql_db: bad query: b' UPDATE \"queue_job\"\\n\s+SET \"date_done\" = "
    r"[^\n]*\\'done\\'\)\) AS \"__tmp\"[^\n]*"
    r"\n\s*ERROR: could not serialize access due to concurrent update\s*",
)


class ScenarioFailed(Exception):
    """A scenario's check failed; the message says what was measured and why it fails."""


class WaitTimeout(ScenarioFailed):
    """A :func:`wait_until` condition did not become true in time."""


# --- the log ------------------------------------------------------------------------


@dataclass
class LogProblem:
    """A WARNING/ERROR record (with its traceback lines) no allow-list matched."""

    phase: str
    lines: list = field(default_factory=list)

    @property
    def first_line(self):
        return self.lines[0] if self.lines else ""


def problem_signature(problem):
    """What makes two problems alike: phase, level, logger, message and the
    traceback's last line, without times, pids, ids and numbers."""
    record = devtool.LOG_RECORD.match(problem.first_line)
    head = f"{record['level']} {record['logger']}: {record['message']}" if record else ""
    tail = next((line for line in reversed(problem.lines[1:]) if line.strip()), "")
    return problem.phase, re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+", "#", f"{head} | {tail}")


EXCEPTION_LINE = re.compile(r"^\s*[\w.]*(Error|Exception|Failure|Violation|Interrupt|Exit)\b")


def problem_summary(problem, context=6):
    """The lines of a problem worth printing: the traceback's last frame and the
    exception line when there is one (the whole is in the log file), else its
    last lines."""
    lines = problem.lines[1:]
    raised = [i for i, line in enumerate(lines) if EXCEPTION_LINE.match(line)]
    if not raised:
        return lines[-context:]
    last = raised[-1]
    frames = [i for i, line in enumerate(lines[:last]) if line.lstrip().startswith('File "')]
    start = frames[-1] if frames else last
    return [line for line in lines[start : last + 1] if line.strip().strip("^~")][:context]


class LogWatch:
    """Follows the server's log file from a thread while phases run.

    Every WARNING, ERROR or CRITICAL record is a problem of the phase running
    when it was read, unless one of that phase's allow-list patterns matches
    ``"LEVEL logger: message"`` in full; traceback lines are added to the
    record before them (those of an allowed record go with it). A pattern may
    also match a whole record, its continuation lines joined by newlines (a
    failed query's error is on the line after the query): the record is then
    taken back from the problems once its last line is read. A bare
    ``Traceback`` (a process dying before its logging is set up) is a problem
    too. ``verbose`` prints every line.
    """

    def __init__(self, path, verbose=False):
        self.path = path
        self.verbose = verbose
        self.problems = []
        self.allowed_seen = []
        self.worker_classes = {}  # pid -> WorkerHTTP / WorkerCron / WorkerJobRunner
        self._phase = "start"
        self._allowed = ()
        self._current = None  # the problem that continuation lines extend
        self._current_text = ""  # its "LEVEL logger: message" and continuation lines
        self._in_allowed = False  # continuation lines of an allowed record
        self._pos = 0
        self._partial = ""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        self._stopping.clear()
        self._thread = threading.Thread(target=self._follow, name="odoo-log-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        self.poll()

    def phase(self, name, allowed=()):
        """From now on, records belong to ``name`` and ``allowed`` patterns are tolerated."""
        with self._lock:
            self.poll()
            self._phase = name
            self._allowed = tuple(re.compile(pattern) for pattern in allowed)
            self._current = None

    def same_phase_as(self, other):
        """Take ``other``'s phase and allow-list: the log of a second node of
        the same database is read as part of what the first one is doing."""
        with self._lock, other._lock:
            self.poll()
            self._phase, self._allowed, self._current = other._phase, other._allowed, None

    def adopt(self, other):
        """Count ``other``'s problems (a stopped second node's) as this log's."""
        other.poll()
        with self._lock:
            self.problems.extend(other.problems)
            self.allowed_seen.extend(other.allowed_seen)

    def problems_of(self, phase):
        with self._lock:
            self.poll()
            return [p for p in self.problems if p.phase == phase]

    def mark(self):
        """A position in the log file; :meth:`records` reads what comes after it."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def records(self, since=0, pattern=None):
        """``"LEVEL logger: message"`` of the records written after ``since`` (a
        :meth:`mark`), of every level; with ``pattern``, those it searches.

        Figures a scenario reads from INFO records (retries after a clash, a
        lost answer found again), read from the file, apart from the watch.
        """
        wanted = re.compile(pattern) if pattern else None
        try:
            with open(self.path, "rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        found = []
        for line in text.split("\n"):
            record = devtool.LOG_RECORD.match(line.rstrip("\r"))
            if not record:
                continue
            entry = f"{record['level']} {record['logger']}: {record['message'].rstrip()}"
            if wanted is None or wanted.search(entry):
                found.append(entry)
        return found

    def _follow(self):
        while not self._stopping.wait(0.2):
            self.poll()

    def poll(self):
        """Read what the file gained since the last call."""
        with self._lock:
            try:
                with open(self.path, "rb") as log:
                    log.seek(self._pos)
                    data = log.read()
                    self._pos = log.tell()
            except FileNotFoundError:
                return
            text = self._partial + data.decode("utf-8", "replace")
            lines = text.split("\n")
            self._partial = lines.pop()
            for line in lines:
                self.feed(line.rstrip("\r"))

    def feed(self, line):
        if self.verbose:
            devtool.say(line)
        record = devtool.LOG_RECORD.match(line)
        if not record:
            if self._current is not None:
                self._current.lines.append(line)
                self._current_text += "\n" + line
                if self._allows(self._current_text):
                    self.problems.remove(self._current)
                    self.allowed_seen.append((self._phase, self._current.lines[0]))
                    self._current = None
                    self._in_allowed = True
            elif self._in_allowed:
                pass  # e.g. the traceback of an allowed _logger.exception()
            elif line.startswith("Traceback (most recent call last)"):
                self._current = LogProblem(self._phase, [line])
                self.problems.append(self._current)
            return
        self._current = None
        self._in_allowed = False
        message = record["message"].rstrip()
        if alive := WORKER_ALIVE.match(message):
            self.worker_classes[int(alive["pid"])] = alive["klass"]
        if record["level"] not in PROBLEM_LEVELS:
            return
        text = f"{record['level']} {record['logger']}: {message}"
        if self._allows(text):
            self.allowed_seen.append((self._phase, line))
            self._in_allowed = True
            return
        self._current = LogProblem(self._phase, [line])
        self._current_text = text
        self.problems.append(self._current)

    def _allows(self, text):
        return any(pattern.fullmatch(text) for pattern in self._allowed)


# --- the server ----------------------------------------------------------------------


class OdooServer:
    """One Odoo server of a throwaway database: install, start, stop, restart, workers.

    Started with the console script (``devtool.odoo_command``), ``workers``
    HTTP workers, ``cron_threads`` cron workers, queue_job server-wide with
    ``ODOO_QUEUE_JOB_CHANNELS=channels`` (``root:0``: no job runner), its own
    free HTTP and gevent ports on 127.0.0.1, logging to ``workdir/<log_name>``.
    ``data_dir``: Odoo's data directory (filestore, sessions), ``workdir/data``
    unless given; the nodes of one database share it. ``job_target``:
    ``(host, port)`` where queue_job's runner sends the jobs to run (default:
    this server's own HTTP port), e.g. a forwarder in front of several nodes.
    """

    def __init__(
        self,
        dbname,
        addons_path,
        workdir,
        *,
        workers=2,
        cron_threads=1,
        channels="root:2",
        log_level="info",
        verbose=False,
        log_name="odoo.log",
        data_dir=None,
    ):
        self.dbname = dbname
        self.addons_path = addons_path
        self.workdir = workdir
        self.workers_count = workers
        self.cron_threads = cron_threads
        self.channels = channels
        self.log_level = log_level
        self.http_port = devtool.free_port()
        self.gevent_port = devtool.free_port()
        self.log_path = workdir / log_name
        self.data_dir = data_dir or workdir / "data"
        self.job_target = None
        self.log = LogWatch(self.log_path, verbose)
        self.proc = None
        self.frozen = set()  # pids stopped by freeze_job_runner

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def base_args(self):
        """Arguments every Odoo process of this database takes (install, shell, server)."""
        return [
            f"--database={self.dbname}",
            f"--db-filter=^{self.dbname}$",
            f"--addons-path={','.join(self.addons_path)}",
            f"--data-dir={self.data_dir}",
            "--http-interface=127.0.0.1",
            f"--http-port={self.http_port}",
            f"--gevent-port={self.gevent_port}",
        ]

    def _run_to_log(self, args, what):
        """Run one Odoo command to its end, its output into the watched log."""
        with open(self.log_path, "ab") as out:
            proc = subprocess.run(
                devtool.odoo_command(*args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=devtool.python_env(),
                cwd=self.workdir,
                check=False,
            )
        if proc.returncode:
            raise RuntimeError(f"{what} failed (Odoo exit {proc.returncode}); see {self.log_path}")

    def install(self, modules):
        """Create the database with ``modules`` installed (one ``--init`` run)."""
        self._run_to_log(
            [
                *self.base_args(),
                f"--init={','.join(modules)}",
                "--max-cron-threads=0",
                f"--log-level={self.log_level}",
                "--stop-after-init",
            ],
            f"Installing {', '.join(modules)} in {self.dbname}",
        )

    def start(self, timeout=120):
        """Start the server and wait until it serves and its HTTP workers are alive."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the server is already running")
        env = devtool.python_env()
        env["ODOO_QUEUE_JOB_CHANNELS"] = self.channels
        if self.job_target:
            env["ODOO_QUEUE_JOB_HOST"], port = self.job_target
            env["ODOO_QUEUE_JOB_PORT"] = str(port)
        cmd = devtool.odoo_command(
            *self.base_args(),
            "--load=base,web,queue_job",
            f"--workers={self.workers_count}",
            f"--max-cron-threads={self.cron_threads}",
            f"--log-level={self.log_level}",
            f"--logfile={self.log_path}",
        )
        known = set(self.log.worker_classes)
        with open(self.log_path, "ab") as out:
            # Its own session: a Ctrl-C in the terminal reaches us only, and we
            # stop the server in order; its whole group can be killed at the end.
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Odoo stopped at start (exit {self.proc.returncode}); see {self.log_path}"
                )
            self.log.poll()
            fresh = [
                pid
                for pid, klass in self.log.worker_classes.items()
                if klass == "WorkerHTTP" and pid not in known
            ]
            if len(fresh) >= self.workers_count and self._serves():
                return self
            time.sleep(0.3)
        raise RuntimeError(f"Odoo did not serve within {timeout} s; see {self.log_path}")

    def _serves(self):
        try:
            with urllib.request.urlopen(f"{self.url}/web/health", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self, timeout=30):
        """Stop the server: SIGINT (graceful), then SIGKILL to its process group."""
        self.thaw_job_runner()  # a stopped process would not stop
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Workers outlive a master killed hard: the group is ours (own session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def restart(self, timeout=120):
        """Stop the whole server and start it again (same database, ports and log)."""
        self.stop()
        return self.start(timeout)

    def workers(self):
        """Live processes of the server by kind: ``http``, ``cron``, ``jobrunner``, ``gevent``."""
        import psutil  # noqa: PLC0415 - Odoo's requirement, present with Odoo

        self.log.poll()
        kinds = {"http": [], "cron": [], "jobrunner": [], "gevent": []}
        if self.proc is None or self.proc.poll() is not None:
            return kinds
        for child in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.Error):
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                if "gevent" in child.cmdline():
                    kinds["gevent"].append(child.pid)
                    continue
                kind = WORKER_KINDS.get(self.log.worker_classes.get(child.pid))
                if kind:
                    kinds[kind].append(child.pid)
        return {kind: sorted(pids) for kind, pids in kinds.items()}

    def freeze_job_runner(self):
        """Stop queue_job's job runner without stopping the server: SIGSTOP
        to its process. Returns its pids.

        In a multi-worker server the runner is a worker process of its own
        (``WorkerJobRunner``) that the prefork master does not watch (no
        watchdog timeout): frozen, it is neither killed nor replaced, and it
        hands no job to the HTTP workers, which keep taking webhooks. It is
        what a hung runner looks like to the database: jobs queued, none
        started. :meth:`thaw_job_runner` lets it go on where it stopped.
        """
        pids = self.workers()["jobrunner"]
        if not pids:
            raise RuntimeError("the server has no job runner process to stop")
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            self.frozen.add(pid)
        return pids

    def thaw_job_runner(self):
        """SIGCONT to the runner processes :meth:`freeze_job_runner` stopped."""
        frozen, self.frozen = self.frozen, set()
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return sorted(frozen)

    def kill_worker(self, pid):
        """SIGKILL one worker of this server (the prefork master spawns another)."""
        import psutil  # noqa: PLC0415

        children = {c.pid for c in psutil.Process(self.proc.pid).children()}
        if pid not in children:
            raise ValueError(f"{pid} is not a worker of this server ({sorted(children)})")
        os.kill(pid, signal.SIGKILL)

    def kill_worker_and_wait(self, pid, timeout=RESPAWN_TIMEOUT):
        """:meth:`kill_worker`, then wait until the master has replaced it
        (the next kill of a scenario finds as many workers as before)."""
        self.kill_worker(pid)
        wait_until(
            lambda: (
                pid not in self.workers()["http"]
                and len(self.workers()["http"]) >= self.workers_count
            ),
            timeout,
            interval=0.2,
            what=f"a new HTTP worker after killing {pid}",
        )


# --- primitives for scenarios ----------------------------------------------------------


class Sql:
    """Read-only SQL on the database (autocommit: every query sees what is committed)."""

    def __init__(self, dbname):
        import psycopg2  # noqa: PLC0415

        self._cnx = psycopg2.connect(dbname=dbname)
        self._cnx.set_session(readonly=True, autocommit=True)
        self._lock = threading.Lock()

    def __call__(self, query, params=None):
        """All rows, as tuples."""
        with self._lock, self._cnx.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchall()

    def value(self, query, params=None):
        """The first column of the first row (None without rows)."""
        rows = self(query, params)
        return rows[0][0] if rows else None

    def close(self):
        with self._lock:
            self._cnx.close()


def wait_until(predicate, timeout, interval=0.5, what=None):
    """Call ``predicate`` until it returns something true, and return that.

    Raises :class:`WaitTimeout` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"not true after {timeout:g} s: {what or getattr(predicate, '__name__', '?')}"
            )
        time.sleep(interval)


@dataclass
class Delivery:
    """One signed webhook request: what a remote system would POST."""

    topic: str
    body: bytes
    headers: dict

    @property
    def webhook_id(self):
        return self.headers.get("X-Shopify-Webhook-Id")


def shopify_delivery(shop, topic, payload, *, webhook_id=None, event_id=None, secret=None):
    """A webhook delivery as the Shopify simulator signs it (see its ``_emit``):
    base64 HMAC-SHA256 of the raw body keyed with the webhook secret, and the
    headers Shopify sends. A new webhook id and event id unless given."""
    from simulators import hmac_sha256_base64  # noqa: PLC0415 - tests/ on the path

    body = json.dumps(payload, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": hmac_sha256_base64(secret or shop.webhooks.secret, body),
        "X-Shopify-Shop-Domain": shop.shop_domain,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "X-Shopify-API-Version": shop.api_version,
    }
    return Delivery(topic, body, headers)


def post(url, body, headers, timeout=60):
    """POST ``body``; returns (HTTP status, response body). One connection per call."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path or "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def silenced(shop):
    """The simulated store sends no webhook while the block runs: the scenario
    makes the deliveries itself (its own ids, copies, timing)."""
    if shop.store.webhook_subscriptions:
        raise RuntimeError("the store has webhook subscriptions: silencing it is not enough")
    with shop.lock:
        saved, shop.webhook_url = shop.webhook_url, None
    try:
        yield shop
    finally:
        with shop.lock:
            shop.webhook_url = saved


# --- the whole stack -------------------------------------------------------------------


class Stack:
    """Database, server and Shopify simulator, wired together; a context manager.

    ``with Stack() as stack:`` checks the prerequisites, creates the database
    ``<prefix>_<hex>`` with every product addon, starts the Shopify simulator,
    connects the database to it (demo wiring: products with stock, backend,
    locations, bindings by SKU, started; no webhook subscription: the store
    sends to the server's webhook route directly) and starts the server.
    Leaving the block stops the server and the simulator and drops the
    database (``keep``: the database and the work directory stay).
    """

    def __init__(
        self,
        *,
        prefix="rs_rel",
        verbose=False,
        keep=False,
        install_requirements=False,
        seed=7,
        workers=2,
        cron_threads=1,
        channels="root:2",
        log_level="info",
        shop_options=None,
        wirings=(),
    ):
        self.prefix = prefix
        self.verbose = verbose
        self.keep = keep
        self.install_requirements = install_requirements
        self.seed = seed
        self.server_options = {
            "workers": workers,
            "cron_threads": cron_threads,
            "channels": channels,
            "log_level": log_level,
        }
        self.shop_options = shop_options or {}
        # More wiring before the server starts: callables given the stack
        # (a POS fleet, say); each may add to ``cleanups``, run at close.
        self.wirings = list(wirings)
        self.cleanups = []
        # SKUs a wiring keeps for its own scenario (the 3PL's: delivered from
        # its warehouse): other scenarios' orders leave them out.
        self.reserved_skus = set()
        self.dbname = None
        self.workdir = None
        self.server = None
        self.shop = None
        self.sql = None
        self.rpc = None
        self.backend_id = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info):
        self.close()

    @property
    def webhook_url(self):
        return f"{self.server.url}{SHOPIFY_WEBHOOK_ROUTE}"

    def start(self):
        addons_path = devtool.prerequisites(install=self.install_requirements, multi_worker=True)
        import simulators  # noqa: PLC0415 - needs tests/ on the path and Odoo's werkzeug

        self.dbname = f"{self.prefix}_{secrets.token_hex(4)}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.dbname}-"))
        self.server = OdooServer(
            self.dbname,
            addons_path,
            self.workdir,
            verbose=self.verbose,
            **self.server_options,
        )
        self.server.log.start()
        modules = devtool.product_modules()
        started = time.monotonic()
        devtool.say(f"== Installing {', '.join(modules)} in database {self.dbname}")
        self.server.log.phase("install")
        self.server.install(modules)
        devtool.say(f"   installed in {time.monotonic() - started:.0f} s")
        self.shop = simulators.ShopifySimulator(seed=self.seed, **self.shop_options).start()
        devtool.say(f"== Connecting it to the Shopify simulator at {self.shop.url}")
        self.server.log.phase("wiring")
        with open(self.server.log_path, "a") as out:
            demo.wire_shopify(
                self.shop,
                self.server.base_args(),
                self.webhook_url,
                register_webhooks=False,
                output=out,
            )
        for wire in self.wirings:
            wire(self)
        self.server.log.phase("server start")
        started = time.monotonic()
        self.server.start()
        # A store sends the topics the backend subscribes ("Register webhooks"),
        # nothing else.
        self.shop.webhook_topics = set(SHOPIFY_SUBSCRIBED_TOPICS)
        self.shop.webhook_url = self.webhook_url
        self.sql = Sql(self.dbname)
        self.rpc = Rpc(self.server.url, self.dbname)
        self.backend_id = self.sql.value(
            "SELECT id FROM connector_backend WHERE backend_type = 'shopify' "
            "AND state = 'running' ORDER BY id LIMIT 1"
        )
        if not self.backend_id:
            raise RuntimeError("no running Shopify backend after the wiring")
        devtool.say(
            f"== Odoo serving {self.server.url} ({self.server.workers_count} workers, "
            f"channels {self.server.channels}) in {time.monotonic() - started:.0f} s; "
            f"log {self.server.log_path}"
        )
        # The first run of the crons (orders read again since the store's
        # history, its refunds restocked, payouts, catalog, stock) is done
        # before any scenario: in one, it would add stock operations of its
        # own to the scenario's (two on one product at once: Odoo retries
        # one, and logs its failed query at ERROR).
        # A server without cron workers or without the job runner (the intake
        # benchmark's: ``root:0``) never runs them: nothing to wait for.
        if self.server.cron_threads and self.server.channels != "root:0":
            self.server.log.phase("first crons")
            started = time.monotonic()
            wait_idle(self)
            devtool.say(
                f"== First run of the scheduled actions done in {time.monotonic() - started:.0f} s"
            )
        self.server.log.phase("between")
        return self

    def close(self):
        """Stop everything started, in every exit path; drop the database unless kept."""
        if self.server is not None:
            self.server.log.phase("server stop")
            self.server.stop()
            self.server.log.stop()
        if self.shop is not None:
            self.shop.stop()
            self.shop = None
        while self.cleanups:
            self.cleanups.pop()()
        if self.sql is not None:
            self.sql.close()
            self.sql = None
        if self.dbname:
            if self.keep:
                devtool.say(f"Kept database {self.dbname} and work directory {self.workdir}")
            else:
                devtool.drop_database(self.dbname)
                shutil.rmtree(self.workdir, ignore_errors=True)

    @contextlib.contextmanager
    def second_node(self):
        """Serve the database from two nodes while the block runs, as two machines would.

        Node 1, :attr:`server`, keeps the job runner and the crons. Node 2,
        started here, has as many HTTP workers, no cron worker and no runner
        (``root:0``), and the same data directory (filestore, sessions). A
        :class:`forwarder.RoundRobinForwarder` in front of both takes
        queue_job's requests to run a job, so jobs run on both nodes: node 1
        is restarted with its runner sending them there. Yields ``(node 2,
        the forwarder)``; the forwarder's ``url`` spreads requests over both
        nodes. Afterwards node 2 and the forwarder stop and node 1 is started
        again as it was; node 2's log records count in the running phase.
        """
        first = self.server
        node = OdooServer(
            self.dbname,
            first.addons_path,
            self.workdir,
            verbose=self.verbose,
            workers=first.workers_count,
            cron_threads=0,
            channels="root:0",
            log_level=first.log_level,
            log_name="odoo-node2.log",
            data_dir=first.data_dir,
        )
        front = forwarder.RoundRobinForwarder(
            [("127.0.0.1", first.http_port), ("127.0.0.1", node.http_port)],
            websocket_nodes=[("127.0.0.1", first.gevent_port), ("127.0.0.1", node.gevent_port)],
        )
        node.log.same_phase_as(first.log)
        node.log.start()
        try:
            front.start()
            node.start()
            first.job_target = ("127.0.0.1", front.port)
            first.restart()
            yield node, front
        finally:
            node.stop()
            node.log.stop()
            front.stop()
            first.log.adopt(node.log)
            if first.job_target:
                first.job_target = None
                first.restart()

    # --- facts of the wired database ---

    def bound_skus(self):
        """SKUs of the Odoo products bound to the store's variants (orders may use them)."""
        return [
            row[0]
            for row in self.sql(
                "SELECT DISTINCT pp.default_code FROM shopify_product_binding b "
                "JOIN product_product pp ON pp.id = b.odoo_id "
                "WHERE b.backend_id = %s AND pp.default_code IS NOT NULL ORDER BY 1",
                (self.backend_id,),
            )
            if row[0] not in self.reserved_skus
        ]

    def customers(self):
        """E-mails of the simulated store's customers."""
        with self.shop.lock:
            return sorted(c["email"] for c in self.shop.store.customers.values())

    def job_worker_pid(self, job_uuid):
        """The pid of the worker running (or that last ran) a queue job."""
        return self.sql.value("SELECT worker_pid FROM queue_job WHERE uuid = %s", (job_uuid,))


# --- a quiet server; the ground truth of stock out ------------------------------------


def wake_crons(dbname):
    """Wake the cron workers now for ``dbname``, as ``ir.cron._trigger`` does:
    they sleep up to a minute between two looks at the scheduled actions, and
    listen for ``cron_trigger`` on the ``postgres`` database meanwhile."""
    import psycopg2  # noqa: PLC0415

    cnx = psycopg2.connect(dbname="postgres")
    try:
        cnx.autocommit = True
        with cnx.cursor() as cr:
            cr.execute("NOTIFY cron_trigger, %s", (dbname,))
    finally:
        cnx.close()


def wait_idle(stack, timeout=120):
    """Wait until no scheduled action is due and no queue job is to run or running.

    A scenario that measures starts there: the first run of the crons, a
    minute after the server starts (orders read again, payouts, catalog
    export, stock reconciliation), would otherwise fall in its middle. The
    cron workers are woken while actions are due, rather than waited for.
    """

    def idle():
        due = stack.sql.value(
            "SELECT count(*) FROM ir_cron WHERE active AND nextcall <= now() AT TIME ZONE 'utc'"
        )
        busy = stack.sql.value(
            "SELECT count(*) FROM queue_job WHERE state IN ('pending', 'enqueued', 'started') "
            "AND (eta IS NULL OR eta <= now() AT TIME ZONE 'utc')"
        )
        if due:
            wake_crons(stack.dbname)
        return not due and not busy

    wait_until(idle, timeout, interval=1, what="no cron due and no queue job to run")


def shopify_stock_mismatches(stack):
    """Where Shopify's available quantity is not what Odoo says it should be.

    For each SKU bound to the store and each Shopify location mapped to an Odoo
    location, Odoo's figure is the one the connector sends
    (``shopify.stock.sync._plans``, every order imported): the free quantity (on hand less
    reserved) of that location and those under it, less the backend's safety
    stock, floored and never below 0; Shopify's is the level's ``available`` in
    ``shop.inventory()``. Returns ``(compared, mismatches)``, a mismatch being
    ``(sku, Shopify location, Shopify's quantity, Odoo's)``.
    """
    backend_id = stack.backend_id
    buffer = stack.sql.value(
        "SELECT COALESCE(shopify_stock_buffer_qty, 0) FROM connector_backend WHERE id = %s",
        (backend_id,),
    )
    locations = stack.sql(
        "SELECT external_id, name, location_id FROM shopify_location "
        "WHERE backend_id = %s AND active AND location_id IS NOT NULL ORDER BY id",
        (backend_id,),
    )
    bindings = stack.sql(
        "SELECT b.odoo_id, pp.default_code, b.inventory_item_id FROM shopify_product_binding b "
        "JOIN product_product pp ON pp.id = b.odoo_id "
        "WHERE b.backend_id = %s AND b.inventory_item_id IS NOT NULL ORDER BY 2",
        (backend_id,),
    )
    shopify = {
        (row["inventory_item_id"], row["location_id"]): row["available"]
        for row in stack.shop.inventory()
    }
    product_ids = sorted({row[0] for row in bindings})
    compared, mismatches = 0, []
    for external_id, name, location_id in locations:
        free = {
            row["id"]: row["free_qty"]
            for row in stack.rpc(
                "product.product",
                "read",
                product_ids,
                ["free_qty"],
                context={"location": location_id},
            )
        }
        for product_id, sku, item_id in bindings:
            odoo = max(0, math.floor(free[product_id] - float(buffer)))
            remote = shopify.get((item_id, external_id))
            compared += 1
            if remote != odoo:
                mismatches.append((sku, name, remote, odoo))
    return compared, mismatches


def done_quantities(stack, picking_ids):
    """{picking id: {SKU: quantity}} of the done moves of these deliveries
    (what left the warehouse), in SQL."""
    shipped = collections.defaultdict(collections.Counter)
    for picking_id, sku, quantity in stack.sql(
        "SELECT m.picking_id, pp.default_code, sum(m.quantity) FROM stock_move m "
        "JOIN product_product pp ON pp.id = m.product_id "
        "WHERE m.picking_id IN %s AND m.state = 'done' GROUP BY 1, 2",
        (tuple(picking_ids),),
    ):
        if quantity:
            shipped[picking_id][sku] += int(quantity)
    return shipped


def unsent_changes(stack, topics, since_id=0):
    """How many outbound changes of ``topics`` are still pending or being
    sent (of ids above ``since_id``)."""
    return stack.sql.value(
        "SELECT count(*) FROM connector_outbound WHERE backend_id = %s AND topic IN %s "
        "AND state IN ('pending', 'sending') AND id > %s",
        (stack.backend_id, tuple(topics), since_id),
    )


def unsent_detail(stack, topics):
    """What keeps changes of ``topics`` unsent: their count per state, sends
    started and retries; the backend's state; and the flush jobs not done
    (state, eta, retries, result). The figures a failed wait prints."""
    changes = stack.sql(
        "SELECT state, attempt, retry_count, count(*) FROM connector_outbound "
        "WHERE backend_id = %s AND topic IN %s AND state IN ('pending', 'sending') "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC",
        (stack.backend_id, tuple(topics)),
    )
    backend = stack.sql.value(
        "SELECT state FROM connector_backend WHERE id = %s", (stack.backend_id,)
    )
    keys = tuple(f"connector.outbound-{stack.backend_id}-{topic}" for topic in topics)
    jobs = stack.sql(
        "SELECT state, to_char(eta, 'HH24:MI:SS'), retry, "
        "left(coalesce(exc_info, result, ''), 120) FROM queue_job "
        "WHERE identity_key IN %s AND state != 'done' ORDER BY id",
        (keys,),
    )
    return (
        "unsent (state, sends started, retries, count): "
        + ", ".join(str(tuple(row)) for row in changes)
        + f"; backend {backend}; flush jobs not done (state, eta, retry, why): "
        + (", ".join(str(tuple(row)) for row in jobs) or "none")
    )


def wait_sent(stack, topics, timeout, what):
    """Wait until no change of ``topics`` is pending or being sent; after
    ``timeout`` seconds, fail saying what kept them (:func:`unsent_detail`)."""
    try:
        wait_until(lambda: not unsent_changes(stack, topics), timeout, interval=1, what=what)
    except WaitTimeout as exc:
        raise ScenarioFailed(f"{exc}: {unsent_detail(stack, topics)}") from None

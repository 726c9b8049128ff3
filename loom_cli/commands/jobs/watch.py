"""`loom jobs watch`: follow jobs until every one has ended; the exit code tells the outcome.

Polling costs one `GET /jobs?ids=...` per interval for up to 100 jobs (more
are split into requests of 100), sent with `If-None-Match` so an unchanged
page is a bodyless 304. While nothing changes the pause grows by half each
time, up to `MAX_BACKOFF_FACTOR` times the interval, and drops back to the
interval as soon as a job changes. An API that stops answering (after the
HTTP layer's own retries) is reported on stderr and polled again until
`--timeout`, so a short outage or a server restart does not end the watch.

Exit codes: 0 when every job Completed, 10 when any Failed, 11 when any was
Cancelled (Failed wins over Cancelled), 12 when the timeout passed first,
130 on Ctrl-C. `jobs create --wait` calls `watch_jobs` directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loom_cli.context import AppContext
from loom_cli.errors import ApiUnavailableError, ExitCode, NotFoundError, UsageError, WatchOutcome
from loom_cli.options import JsonOption, OutputOption, QuietOption, output_value
from loom_cli.output import short_address
from loom_cli.text import escape_control

if TYPE_CHECKING:
    from loom_cli.http import ApiClient

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled"})

# The API accepts at most this many ids in one `GET /jobs?ids=...`.
MAX_IDS_PER_REQUEST = 100

DEFAULT_INTERVAL = 2.0
BACKOFF_GROWTH = 1.5
# The pause between polls never grows past this many intervals, nor past MAX_PAUSE seconds.
MAX_BACKOFF_FACTOR = 5
MAX_PAUSE = 30.0

# After the first poll, the HTTP layer's retries may wait at most this many
# seconds in all per request. An outage is then reported within seconds, and
# --timeout is overrun by at most about this much.
OUTAGE_RETRY_BUDGET = 5.0

WATCH_EXAMPLES = """\
Examples:

  loom jobs watch job_8fK2x                  # live table on a terminal
  loom jobs watch job_8fK2x job_3Jd9q --timeout 600
  loom jobs watch job_8fK2x | tee watch.log  # one line per change
  loom jobs watch job_8fK2x -o jsonl | jq -r 'select(.job) | .job.status'
  loom jobs watch job_8fK2x && echo "all Completed"

Piped output: one line per status change, "TIME ID STATUS WORKER NAME",
where TIME is when the job changed (UTC) and WORKER is "-" before a claim.

JSON lines (-o jsonl), one object per line:
  {"event": "status", "previous_status": S or null, "job": {...}}
      when a job is first seen, and on each status change
  {"event": "final", "terminal": true or false, "job": {...}}
      once per job at the end
  {"event": "end", "exit_code": N, "reason": R}
      last; R is completed, failed, cancelled or timeout
-o json and -o yaml print the final jobs once, at the end; -q prints nothing.

Exit codes: 0 every job Completed; 10 a job Failed; 11 a job was Cancelled
(Failed wins when both happen); 12 --timeout passed first; 130 Ctrl-C (the
jobs keep running); 4 an unknown id.
"""


# The watch options, shared with `jobs create --wait`.
IntervalOption = Annotated[
    float,
    typer.Option("--interval", min=0.1, max=3600, metavar="SECONDS", help="Seconds between checks while jobs change."),
]
WatchTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        metavar="SECONDS",
        help="Stop with exit code 12 after this many seconds (the global `loom --timeout` is per request). \\[default: no limit]",
        show_default=False,
    ),
]


def register(jobs_app: typer.Typer) -> None:
    jobs_app.command("watch", epilog=WATCH_EXAMPLES)(watch)


def watch(
    ctx: typer.Context,
    job_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Ids of the jobs to follow.", show_default=False)],
    interval: IntervalOption = DEFAULT_INTERVAL,
    timeout: WatchTimeoutOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Follow jobs until every one is Completed, Failed or Cancelled.

    Works without logging in: job status is public. The exit code tells the
    outcome, so scripts can branch on it.
    """
    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    code = watch_jobs(app, job_ids, interval=interval, timeout=timeout)
    if code != ExitCode.OK:
        raise WatchOutcome(code)


def watch_jobs(
    app: AppContext,
    job_ids: list[str],
    *,
    interval: float,
    timeout: float | None,
    resume_hint: bool = True,
) -> ExitCode:
    """Follow `job_ids` until all have ended or `timeout` seconds passed; return the watch exit code.

    Raises NotFoundError (exit 4) when an id is unknown at the start, and the
    usual LoomErrors for a bad id or an API that cannot be reached at the start.
    Ctrl-C returns ExitCode.INTERRUPTED, after printing how to watch again
    unless `resume_hint` is false (the API goes away with the caller).
    """
    from loom_cli import api

    ids = list(dict.fromkeys(job_ids))
    if not ids:
        raise UsageError("no job ids given", hint="pass one or more ids: loom jobs watch job_...")
    for job_id in ids:
        api.validate_job_id(job_id)
    if interval <= 0:
        raise UsageError(f"invalid interval {interval!r}: must be more than 0 seconds", hint="for example --interval 2")

    view = _make_view(app, ids)
    try:
        with app.api(auth=False) as client:
            watcher = JobWatcher(app, client, ids, view=view, interval=interval, timeout=timeout)
            try:
                code = watcher.run()
            finally:
                view.close()
        # Only now, with the live table stopped, can stderr lines show cleanly.
        watcher.print_summary(code)
        return code
    except KeyboardInterrupt:
        view.close()
        if resume_hint:
            app.warn(f"Interrupted; the jobs keep running. Watch them again with: {_resume_command(app, ids)}")
        return ExitCode.INTERRUPTED


class JobWatcher:
    """The polling loop: fetch, compare, tell the view, pause; separate from any output format."""

    def __init__(
        self,
        app: AppContext,
        client: ApiClient,
        ids: list[str],
        *,
        view: WatchView,
        interval: float,
        timeout: float | None,
    ) -> None:
        self.app = app
        self.client = client
        self.ids = ids
        self.view = view
        self.interval = interval
        self.timeout = timeout
        self.jobs: dict[str, dict] = {}
        # ETag of the last page per request, keyed by the ids the request asked for.
        self._etags: dict[tuple[str, ...], str] = {}
        self._unreachable = False

    def run(self) -> ExitCode:
        started = self.app.clock()
        deadline = None if self.timeout is None else started + self.timeout

        # The first fetch is not retried past the HTTP layer: unknown ids and
        # an unreachable API end the watch at once.
        self._apply(self._fetch(self.ids))
        missing = [job_id for job_id in self.ids if job_id not in self.jobs]
        if missing:
            raise NotFoundError(
                f"job not found: {', '.join(missing)}",
                hint="check the ids with: loom jobs list --mine",
            )
        self._shorten_retries()

        pause = self.interval
        while self._pending():
            now = self.app.clock()
            if deadline is not None and now >= deadline:
                return self._finish(timed_out=True)
            wait = pause if deadline is None else min(pause, deadline - now)
            self.view.waiting(wait)
            self.app.sleep(wait)

            changed = self._poll()
            if changed:
                pause = self.interval
            else:
                pause = min(pause * BACKOFF_GROWTH, self.max_pause)
        return self._finish(timed_out=False)

    @property
    def max_pause(self) -> float:
        return max(self.interval, min(self.interval * MAX_BACKOFF_FACTOR, MAX_PAUSE))

    # -- polling ---------------------------------------------------------------------------

    def _pending(self) -> list[str]:
        return [job_id for job_id in self.ids if self.jobs[job_id].get("status") not in TERMINAL_STATUSES]

    def _poll(self) -> bool:
        """Fetch the jobs still running; return whether any status changed."""
        try:
            fetched = self._fetch(self._pending())
        except ApiUnavailableError as exc:
            if not self._unreachable:
                self._unreachable = True
                self.view.notice(f"API unreachable, retrying… ({exc.message})")
            return False
        if self._unreachable:
            self._unreachable = False
            self.view.notice("API reachable again.")

        return self._apply(fetched)

    def _apply(self, fetched: dict[str, dict]) -> bool:
        """Update from `fetched` in the order the ids were given; return whether any status changed."""
        changed = False
        for job_id in self.ids:
            if job_id in fetched:
                changed = self._update(fetched[job_id]) or changed
        return changed

    def _fetch(self, ids: list[str]) -> dict[str, dict]:
        """Return the jobs of `ids` that changed since the last fetch (all of them the first time).

        A job that vanishes from an answer that did change means the API no
        longer knows it (for example a sandbox restarted with a fresh database).
        """
        from loom_cli import api

        found: dict[str, dict] = {}
        for chunk in _chunks(ids, MAX_IDS_PER_REQUEST):
            key = tuple(chunk)
            page = api.list_jobs(self.client, ids=chunk, limit=len(chunk), etag=self._etags.get(key))
            if page.not_modified:
                continue
            if page.etag:
                self._etags[key] = page.etag
            chunk_jobs = {job.get("id"): job for job in page.data if job.get("id") in key}
            vanished = [job_id for job_id in chunk if job_id in self.jobs and job_id not in chunk_jobs]
            if vanished:
                raise NotFoundError(
                    f"job no longer found: {', '.join(vanished)}",
                    hint="the API lost track of it; check --api-url and the job with: loom jobs status ID",
                )
            found.update(chunk_jobs)
        return found

    def _update(self, job: dict) -> bool:
        """Store the latest copy of `job`; tell the view and return True when its status changed."""
        job_id = job["id"]
        previous = self.jobs.get(job_id)
        self.jobs[job_id] = job
        previous_status = None if previous is None else previous.get("status")
        if previous is not None and previous_status == job.get("status"):
            self.view.refreshed(job)
            return False
        self.view.status_changed(job, previous_status)
        return True

    def _shorten_retries(self) -> None:
        """Give later polls a smaller retry budget, so an outage is reported and --timeout kept."""
        self.client.max_backoff = min(self.client.max_backoff, OUTAGE_RETRY_BUDGET)

    def _finish(self, *, timed_out: bool) -> ExitCode:
        jobs = [self.jobs[job_id] for job_id in self.ids]
        code = ExitCode.WATCH_TIMEOUT if timed_out else outcome_code(job.get("status") for job in jobs)
        self.view.finished(jobs, code)
        return code

    def print_summary(self, code: ExitCode) -> None:
        """Say on stderr how the watch ended: which jobs still run after a timeout, else the count per status."""
        jobs = [self.jobs[job_id] for job_id in self.ids]
        if code == ExitCode.WATCH_TIMEOUT:
            running = ", ".join(
                f"{escape_control(str(job['id']))} ({escape_control(str(job.get('status')))})"
                for job in jobs
                if job.get("status") not in TERMINAL_STATUSES
            )
            self.app.warn(f"Timed out after {self.timeout:g} s; still running: {running}.")
        else:
            self.app.info(_summary(jobs))


def outcome_code(statuses: Iterable[str | None]) -> ExitCode:
    """Exit code for jobs that all ended: Failed (10) wins over Cancelled (11), else 0."""
    seen = set(statuses)
    if "Failed" in seen:
        return ExitCode.JOB_FAILED
    if "Cancelled" in seen:
        return ExitCode.JOB_CANCELLED
    return ExitCode.OK


def _summary(jobs: list[dict]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        status = str(job.get("status"))
        counts[status] = counts.get(status, 0) + 1
    parts = ", ".join(f"{count} {escape_control(status)}" for status, count in counts.items())
    return f"Done: {parts}."


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _resume_command(app: AppContext, ids: list[str]) -> str:
    """Return the command that watches `ids` again, with the global options that chose the API."""
    import shlex

    parts = ["loom"]
    if app.options.profile:
        parts += ["--profile", app.options.profile]
    if app.options.api_url:
        parts += ["--api-url", app.options.api_url]
    parts += ["jobs", "watch", *ids]
    return shlex.join(parts)


# -- views: how changes reach the user ---------------------------------------------------


class WatchView:
    """Receives the watcher's events; each subclass prints them in one format."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def status_changed(self, job: dict, previous_status: str | None) -> None:
        """Show a job seen for the first time (previous_status None) or whose status changed."""

    def refreshed(self, job: dict) -> None:
        """Take a newer copy of a job whose status did not change."""

    def waiting(self, seconds: float) -> None:
        """Show that the next poll comes in `seconds`."""

    def notice(self, message: str) -> None:
        """Show a message about the API rather than the jobs, such as an outage and its end."""
        self.app.warn(message)

    def finished(self, jobs: list[dict], code: ExitCode) -> None:
        """Show the end of the watch (every job ended, or the timeout passed); `jobs` are their last copies."""

    def close(self) -> None:
        """Release the terminal; called once, also after an error or Ctrl-C."""


class PlainLinesView(WatchView):
    """One line per status change on stdout, for pipes and log files."""

    def status_changed(self, job: dict, previous_status: str | None) -> None:
        when = _short_timestamp(job.get("updated_at")) or _utc_now_text(self.app.clock())
        worker = job.get("worker") or "-"
        name = escape_control(str(job.get("name", "")))
        line = f"{when} {escape_control(str(job['id']))} {escape_control(str(job.get('status')))} {escape_control(str(worker))} {name}"
        self.app.stdout.write(line + "\n")
        self.app.stdout.flush()


class JsonLinesView(WatchView):
    """One JSON object per event on stdout; the format is described in the command's help."""

    def _emit(self, event: dict) -> None:
        from loom_cli.output import dump_json

        self.app.stdout.write(dump_json(event, indent=None) + "\n")
        self.app.stdout.flush()

    def status_changed(self, job: dict, previous_status: str | None) -> None:
        self._emit({"event": "status", "previous_status": previous_status, "job": job})

    def finished(self, jobs: list[dict], code: ExitCode) -> None:
        for job in jobs:
            self._emit({"event": "final", "terminal": job.get("status") in TERMINAL_STATUSES, "job": job})
        self._emit({"event": "end", "exit_code": int(code), "reason": _REASONS[code]})


_REASONS = {
    ExitCode.OK: "completed",
    ExitCode.JOB_FAILED: "failed",
    ExitCode.JOB_CANCELLED: "cancelled",
    ExitCode.WATCH_TIMEOUT: "timeout",
}


class FinalRecordsView(WatchView):
    """Nothing while watching, then the last copy of every job at the end (-o json, -o yaml)."""

    def finished(self, jobs: list[dict], code: ExitCode) -> None:
        from loom_cli.commands.jobs.browse import LIST_COLUMNS

        self.app.renderer.records(jobs, columns=LIST_COLUMNS)


class LiveTableView(WatchView):
    """A table redrawn in place on a terminal: id, name, status, worker and elapsed time per job.

    rich redraws it from a background thread about twice a second, so the
    elapsed times keep counting between polls; `_lock` guards the rows.
    """

    def __init__(self, app: AppContext, ids: list[str]) -> None:
        super().__init__(app)
        from rich.console import Console
        from rich.live import Live

        self.ids = ids
        self.jobs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._caption = "starting…"
        self.console = Console(
            file=app.stdout,
            force_terminal=True,
            no_color=not app.color,
            color_system="standard" if app.color else None,
            markup=False,
            emoji=False,
            highlight=False,
        )
        self.live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=2,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()
        self._closed = False

    def status_changed(self, job: dict, previous_status: str | None) -> None:
        self.refreshed(job)

    def refreshed(self, job: dict) -> None:
        with self._lock:
            self.jobs[job["id"]] = job

    def waiting(self, seconds: float) -> None:
        with self._lock:
            self._caption = f"checking every {seconds:.1f} s · Ctrl-C stops watching, the jobs keep running"

    def notice(self, message: str) -> None:
        # Printed through the live console, above the table, so the redraw stays intact.
        from rich.text import Text

        self.live.console.print(Text(escape_control(message), style="yellow" if self.app.color else ""))

    def finished(self, jobs: list[dict], code: ExitCode) -> None:
        with self._lock:
            for job in jobs:
                self.jobs[job["id"]] = job
            self._caption = ""
        self.live.refresh()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.live.stop()

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = self.app.clock()
        with self._lock:
            rows = [self.jobs.get(job_id) for job_id in self.ids]
            caption = self._caption
        table = Table(box=None, pad_edge=False, header_style="bold" if self.app.color else "", caption=caption or None)
        for header in ("ID", "NAME", "STATUS", "WORKER", "ELAPSED"):
            # Ids and shortened addresses stay on one line so they can be copied.
            table.add_column(header, overflow="fold", no_wrap=header in ("ID", "WORKER"))
        for job_id, job in zip(self.ids, rows):
            if job is None:
                table.add_row(Text(job_id), Text("…"), Text("-"), Text("-"), Text("-"))
                continue
            status = str(job.get("status"))
            table.add_row(
                Text(escape_control(job_id)),
                Text(escape_control(str(job.get("name", "")))),
                Text(escape_control(status), style=_STATUS_STYLES.get(status, "") if self.app.color else ""),
                Text(_short_address(job.get("worker"))),
                Text(_elapsed(job, now)),
            )
        return table


_STATUS_STYLES = {"Completed": "green", "Failed": "red", "Cancelled": "yellow", "InProgress": "cyan"}


def _make_view(app: AppContext, ids: list[str]) -> WatchView:
    renderer = app.renderer
    if renderer.quiet:
        return WatchView(app)
    if renderer.fmt in ("json", "yaml"):
        return FinalRecordsView(app)
    if renderer.fmt == "jsonl":
        return JsonLinesView(app)
    if renderer.terminal and app.env.get("TERM") != "dumb":
        return LiveTableView(app, ids)
    return PlainLinesView(app)


def _short_address(address: object) -> str:
    if not isinstance(address, str) or not address:
        return "-"
    return short_address(escape_control(address))


def _parse_time(value: object) -> datetime | None:
    from loom_cli.output import parse_timestamp

    return parse_timestamp(value)


def _elapsed(job: dict, now: float) -> str:
    """Time since the job was created, up to when it ended, as "42s", "3m05s" or "2h04m"."""
    created = _parse_time(job.get("created_at"))
    if created is None:
        return "-"
    ended = _parse_time(job.get("finished_at"))
    seconds = max(0, int((ended.timestamp() if ended else now) - created.timestamp()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _short_timestamp(value: object) -> str | None:
    """Return an API timestamp cut to whole seconds ("2025-01-31T12:00:03Z"), or None."""
    moment = _parse_time(value)
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now_text(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

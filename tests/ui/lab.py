"""Drive the workbook's JupyterLab in headless Chromium and report what the page shows.

- :class:`JupyterLab` starts ``jupyter lab`` from this environment on 127.0.0.1
  with a random token, on a copy of the notebooks (a run never saves over the
  repository), in FAST mode with one thread, and with the inline matplotlib
  backend a student gets.
- :func:`check_notebooks` opens each notebook in its own page (all at once, so
  their kernels run side by side), runs *Run > Run All Cells*, waits for the
  kernel, and reports the problems a student would see: error or stderr output,
  cells that did not run, widgets that did not render, images that did not
  load, a slider that does not redraw its figure, a missing progress bar. Each
  problem names the cell (index and first line of its source) and quotes the page.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from tests.factories import ROOT, free_port
from utils.instructor.student import NOTEBOOK_FOLDERS, STUDENT_PACKAGES

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE / "screenshots"

CHROMIUM = Path(os.environ.get("WORKBOOK_CHROMIUM", "/usr/bin/chromium"))
"""Debian's Chromium; ``WORKBOOK_CHROMIUM`` points the tests at another Chromium or Chrome."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

COPIED = (*NOTEBOOK_FOLDERS, "solutions", *STUDENT_PACKAGES)
"""Folders copied into the server's root (outputs stripped), so runs never touch the repo."""

# JupyterLab settings for the test: no news or update checks (no network), and
# every cell in the DOM (no virtual scrolling) so the whole notebook can be read.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": (
        '{"fetchNews": "false", "checkForUpdates": false}'
    ),
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": '{"autosave": false}',
}

# What a widget looks like when JupyterLab could not render it: its text repr.
WIDGET_REPR = re.compile(
    r"^\s*(interactive|HBox|VBox|Box|Output|FloatProgress|IntProgress|FloatSlider|IntSlider"
    r"|Dropdown|Button|Checkbox|ToggleButtons|Tab|Accordion)\(",
)
WIDGET_FAILED = ("Error displaying widget", "Loading widget...", "Could not render widget")


# --- the server ------------------------------------------------------------------------------


def copy_tree(dest: Path) -> Path:
    """Copy the notebook folders into ``dest`` with outputs and widget state stripped.

    Stripped outputs make every image, widget and progress bar on the page one
    that this run produced.
    """
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src,
                dest / name,
                ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pt"),
            )
    if (ROOT / "data").exists():
        (dest / "data").symlink_to(ROOT / "data")
    for path in dest.rglob("*.ipynb"):
        strip_outputs(path)
    return dest


def strip_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


@dataclass
class JupyterLab:
    """A running ``jupyter lab`` on 127.0.0.1; ``url`` has no trailing slash."""

    root: Path
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, root: Path, home: Path, timeout: float = 90.0) -> JupyterLab:
        """Start the server on ``root``; ``home`` holds its config, settings and log."""
        token = secrets.token_hex(16)
        port = free_port()
        env = dict(os.environ)
        env.setdefault("WORKBOOK_FAST", "1")
        env["OMP_NUM_THREADS"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        # The test env sets MPLBACKEND=Agg for headless runs; a student's kernel
        # uses the inline backend, which is what shows figures in the page.
        env.pop("MPLBACKEND", None)
        for var, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTERLAB_SETTINGS_DIR", "settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
        ):
            (home / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(home / sub)
        for name, text in LAB_SETTINGS.items():
            path = home / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        log = home / "jupyterlab.log"
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--allow-root",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.port_retries=0",
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        lab = cls(root, f"http://127.0.0.1:{port}", token, process, log)
        lab._wait_ready(timeout)
        return lab

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"jupyter lab did not answer /api/status in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def api(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()

    def shutdown_session(self, path: str) -> None:
        """Stop the kernel of the notebook at ``path`` (frees the CPU for the others)."""
        try:
            for session in json.loads(self.api("GET", "/api/sessions")):
                if session.get("path") == path:
                    self.api("DELETE", f"/api/sessions/{session['id']}")
        except (urllib.error.URLError, OSError):
            pass

    def shutdown_kernels(self) -> None:
        """Stop every kernel (frees the CPU for the next notebook)."""
        for kernel in json.loads(self.api("GET", "/api/kernels")):
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except urllib.error.URLError:
                pass

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.shutdown_kernels()
            except (urllib.error.URLError, OSError):
                pass
            os.killpg(self.process.pid, 15)  # the server's own process group
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(5)


# --- the page ---------------------------------------------------------------------------------

# Everything the checks need from the page, read in one pass: per cell its kind,
# its prompt ("[ ]:", "[*]:", "[3]:") and its outputs (nested ones included,
# such as the figure inside an interact widget's output).
READ_CELLS_JS = """
(panel) => Array.from(panel.querySelectorAll('.jp-Cell')).map((cell) => ({
  kind: cell.classList.contains('jp-CodeCell') ? 'code'
      : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
  prompt: (cell.querySelector('.jp-InputArea-prompt') || {innerText: ''}).innerText.trim(),
  outputs: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map((out) => ({
    mime: out.getAttribute('data-mime-type') || '',
    text: out.innerText.slice(0, 6000),
    nested: out.parentElement.closest('.widget-output') !== null,
    widget: out.querySelector('.jupyter-widgets') !== null,
    images: Array.from(out.querySelectorAll(':scope > img, :scope > svg')).map((img) => ({
      loaded: img.tagName.toLowerCase() === 'svg' ? true : (img.complete && img.naturalWidth > 0),
      width: img.getBoundingClientRect().width,
    })),
  })),
  sliders: cell.querySelectorAll('.widget-slider').length,
  progress: Array.from(cell.querySelectorAll('.widget-hprogress')).map((bar) => ({
    width: bar.getBoundingClientRect().width,
    text: (bar.parentElement || bar).innerText.trim().slice(0, 200),
  })),
}))
"""


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 80 else line[:77] + "..."
    return "(empty)"


def _quote(text: str, limit: int = 1500) -> str:
    """The page's text, indented; long tracebacks keep their head and their end."""
    text = text.strip("\n")
    if len(text) > limit:
        text = text[: limit // 4] + "\n    [...]\n" + text[-(3 * limit) // 4 :]
    return "\n".join("      | " + line for line in text.splitlines())


@dataclass(frozen=True)
class Notebook:
    """A notebook to open, and what it must show besides running without errors."""

    path: str  # relative to the repository root
    expects_widget: bool = False  # an ipywidgets slider whose figure changes when it moves
    expects_progress: bool = False  # a tqdm.auto progress bar, rendered as a widget
    expects_figure: bool = True  # at least one figure shown as an image

    @property
    def name(self) -> str:
        return Path(self.path).stem


class NotebookRun:
    """One notebook in its own page (and JupyterLab workspace), driven step by step.

    :meth:`step` never blocks, so several notebooks load and run at the same time:
    ``loading`` (page, cells, kernel connected and idle) -> *Run All Cells* ->
    ``running`` -> ``done`` (no cell queued or running, kernel idle), or ``failed``.
    """

    def __init__(self, context, lab: JupyterLab, notebook: Notebook):
        self.lab = lab
        self.notebook = notebook
        self.relpath = notebook.path
        self.name = notebook.name
        self.nb = nbformat.read(lab.root / notebook.path, as_version=4)
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.console_errors: list[str] = []
        self.state = "loading"
        self.started = self.opened = self.finished = time.monotonic()
        self._idle_polls = 0
        self._seen_run = False
        self.shown: float | None = None  # when the cells appeared
        self.page = context.new_page()
        self.page.on(
            "console", lambda m: m.type == "error" and self.console_errors.append(m.text[:300])
        )
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"[:300]))
        self.panel = self.page.locator(".jp-NotebookPanel")
        workspace = f"ui-{self.name}-{secrets.token_hex(3)}"
        self.page.goto(
            f"{lab.url}/lab/workspaces/{workspace}/tree/{self.relpath}?token={lab.token}",
            wait_until="commit",
        )

    def cell_label(self, index: int) -> str:
        if 0 <= index < len(self.nb.cells):
            return f"cell {index} `{_first_line(self.nb.cells[index].source)}`"
        return f"cell {index}"

    def fail(self, problem: str) -> None:
        self.problems.append(problem)
        self.state = "failed"
        self.finished = time.monotonic()

    def step(self, open_timeout_s: float, run_timeout_s: float) -> None:
        """Advance ``loading`` or ``running`` by one poll."""
        try:
            self.dismiss_kernel_dialog()
            if self.state == "loading":
                self._step_loading(open_timeout_s)
            elif self.state == "running":
                self._step_running(run_timeout_s)
        except Exception as error:  # a page that broke: report it with the rest
            self.fail(f"{type(error).__name__}: {error}".strip()[:2000])

    def _step_loading(self, timeout_s: float) -> None:
        shown = self.panel.locator(".jp-Cell").count() > 0
        if shown and self.shown is None:
            self.shown = time.monotonic()
        ready = shown and self.kernel_connected() and self.kernel_status() == "idle"
        if not ready:
            if time.monotonic() - self.started > timeout_s:
                what = "the notebook" if not self.panel.count() else "a connected idle kernel"
                self.fail(
                    f"no {what} in the page after {timeout_s:.0f} s (kernel: {self.kernel_status()!r})"
                )
            return
        if self.panel.count() != 1:
            self.fail(f"expected one notebook in the page, found {self.panel.count()}")
            return
        # Run > Run All Cells, with the notebook as the current widget (a click on a
        # prompt, not on a link in a cell). No click here navigates, so none waits for
        # navigations: on a loaded machine Playwright's wait after a click could outlast
        # its timeout once the click was done (whether the run started is checked next,
        # in _step_running).
        self.panel.locator(".jp-Cell .jp-InputPrompt").first.click(no_wait_after=True)
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click(no_wait_after=True)
        self.page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click(no_wait_after=True)
        self.state = "running"
        self.opened = time.monotonic()

    def _step_running(self, timeout_s: float) -> None:
        prompts = self.panel.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        busy = any("*" in t for t in prompts)
        self._seen_run = self._seen_run or busy or any(re.search(r"\d", t) for t in prompts)
        status = self.kernel_status()
        if status in ("dead", "restarting", "autorestarting"):
            running = [i for i, t in zip(self._code_cell_indices(), prompts) if "*" in t]
            where = f" while running {self.cell_label(running[0])}" if running else ""
            self.fail(f"the kernel is {status}{where}")
            return
        if prompts and not self._seen_run and time.monotonic() - self.opened > 30:
            self.fail("Run > Run All Cells started no cell in 30 s")
            return
        if (self._seen_run or not prompts) and not busy and status == "idle":
            self._idle_polls += 1
            if self._idle_polls >= 2:  # idle on two polls in a row: the run is over
                self.state = "done"
                self.finished = time.monotonic()
            return
        self._idle_polls = 0
        if time.monotonic() - self.opened > timeout_s:
            running = [i for i, t in zip(self._code_cell_indices(), prompts) if "*" in t]
            where = self.cell_label(running[0]) if running else "no cell"
            self.fail(f"Run All did not finish in {timeout_s:.0f} s; still running: {where}")

    def _code_cell_indices(self) -> list[int]:
        """Notebook index of each code cell, in page order."""
        return [i for i, cell in enumerate(self.nb.cells) if cell.cell_type == "code"]

    def kernel_status(self) -> str:
        indicator = self.panel.locator(".jp-Notebook-ExecutionIndicator")
        return (indicator.get_attribute("data-status") or "") if indicator.count() else ""

    def kernel_connected(self) -> bool:
        """The server has a kernel for this notebook, idle, with the page connected to it."""
        for session in json.loads(self.lab.api("GET", "/api/sessions")):
            kernel = session.get("kernel") or {}
            if session.get("path") == self.relpath and kernel.get("connections", 0) >= 1:
                return kernel.get("execution_state") == "idle"
        return False

    def wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.kernel_status() != "idle":
            self.dismiss_kernel_dialog()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the kernel is {self.kernel_status()!r}, not idle, after {timeout_s:.0f} s"
                )
            self.page.wait_for_timeout(250)

    def dismiss_kernel_dialog(self) -> None:
        """Accept JupyterLab's "Select Kernel" dialog (a notebook without kernel metadata)."""
        if "Select Kernel" in dialog_text(self.page):
            try:
                self.page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=2000)
            except Exception:  # closed on its own meanwhile; the caller polls again
                pass

    def read_cells(self) -> list[dict]:
        return self.panel.evaluate(READ_CELLS_JS)

    def wait_widgets(self, timeout_s: float = 10.0) -> None:
        """Give widget views time to leave "Loading widget..."."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.panel.get_by_text("Loading widget...").count():
                return
            self.page.wait_for_timeout(250)

    def move_slider(self, timeout_s: float = 30.0) -> tuple[str | None, str]:
        """Move the first slider of an interact widget that shows a figure.

        Returns ``(problem or None, what happened)``.
        """
        interacts = self.panel.locator(".widget-interact").filter(
            has=self.page.locator(".widget-slider")
        )
        target = None
        for i in range(interacts.count()):
            if interacts.nth(i).locator(".widget-output img").count():
                target = interacts.nth(i)
                break
        if target is None:
            return "no slider widget (ipywidgets interact) that shows a figure was rendered", ""
        index = target.evaluate(
            "(el) => Array.from(el.closest('.jp-NotebookPanel').querySelectorAll('.jp-Cell'))"
            ".indexOf(el.closest('.jp-Cell'))"
        )
        label = self.cell_label(index)
        handle = target.locator(".widget-slider .noUi-handle").first
        image = target.locator(".widget-output img").first
        before_src = image.get_attribute("src")
        readout = target.locator(".widget-slider .widget-readout").first
        before_value = readout.inner_text().strip()
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(3):
            self.page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        after_value = readout.inner_text().strip()
        if after_value == before_value:
            # keyboard did not move it: drag the handle instead
            box = handle.bounding_box()
            self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            self.page.mouse.down()
            self.page.mouse.move(
                box["x"] + (-40 if at_max else 40), box["y"] + box["height"] / 2, steps=5
            )
            self.page.mouse.up()
            after_value = readout.inner_text().strip()
        moved = f"slider in {label} moved from {before_value} to {after_value}"
        if after_value == before_value:
            return f"{label}: the slider did not move (keys and drag)", moved
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            images = target.locator(".widget-output img")
            if images.count() and images.first.get_attribute("src") != before_src:
                self.wait_idle(timeout_s)
                self.page.wait_for_timeout(300)
                images = target.locator(".widget-output img")
                if images.count() and images.first.get_attribute("src") != before_src:
                    value = readout.inner_text().strip()
                    target.screenshot(path=str(SCREENSHOTS / f"{self.name}-widget.png"))
                    return (
                        None,
                        f"slider in {label} moved from {before_value} to {value}; its figure changed",
                    )
            self.page.wait_for_timeout(250)
        shown = target.locator(".widget-output").first.inner_text()
        return (
            f"{label}: {moved}, but its figure did not change in {timeout_s:.0f} s"
            + (f"; the widget shows:\n{_quote(shown)}" if shown.strip() else ""),
            moved,
        )

    def screenshot(self, path: Path, part_height: int = 12000) -> list[Path]:
        """The whole notebook: ``path``, then ``<name>-2.png``... for notebooks taller
        than ``part_height`` pixels (the viewport grows to the notebook's height).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob(f"{path.stem}-[0-9]*.png"):
            old.unlink()
        if not self.panel.count():
            self.page.screenshot(path=str(path))
            return [path]
        # the notebook's scrolling element: the tallest scrollable one in the panel
        height = self.panel.evaluate(
            """(panel) => {
              const all = Array.from(panel.querySelectorAll('.jp-Notebook, .jp-Notebook *'))
                .filter((e) => e.scrollHeight > e.clientHeight + 1
                  && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY));
              all.sort((a, b) => b.scrollHeight - a.scrollHeight);
              panel.querySelectorAll('[data-ui-scroller]').forEach((e) => e.removeAttribute('data-ui-scroller'));
              if (!all.length) return 0;
              all[0].setAttribute('data-ui-scroller', '');
              return all[0].scrollHeight;
            }"""
        )
        size = self.page.viewport_size
        paths = []
        try:
            chrome = 160  # menu, tabs, toolbar and status bar around the notebook
            self.page.set_viewport_size(
                {"width": size["width"], "height": max(min(height + chrome, part_height), 600)}
            )
            scroller = self.panel.locator("[data-ui-scroller]")
            if not height or not scroller.count():
                self.page.screenshot(path=str(path))
                return [path]
            self.page.wait_for_timeout(500)  # JupyterLab lays out again after the resize
            top = 0
            while True:
                scroller.evaluate("(e, y) => { e.scrollTop = y; }", top)
                self.page.wait_for_timeout(300)
                top, shown, total = scroller.evaluate(
                    "(e) => [e.scrollTop, e.clientHeight, e.scrollHeight]"
                )
                part = path if not paths else path.with_name(f"{path.stem}-{len(paths) + 1}.png")
                self.page.screenshot(path=str(part))
                paths.append(part)
                if top + shown >= min(total, height) - 1 or shown <= 0 or len(paths) >= 10:
                    return paths
                top += shown
        finally:
            self.page.set_viewport_size(size)

    def close(self) -> None:
        self.page.close()


def find_problems(run: NotebookRun, cells: list[dict], expect: Notebook) -> list[str]:
    """What a student would see go wrong, one line (plus the page's text) per problem."""
    problems = []
    if len(cells) != len(run.nb.cells):
        problems.append(f"the page shows {len(cells)} cells, the notebook has {len(run.nb.cells)}")
    not_run = []
    for index, cell in enumerate(cells):
        label = run.cell_label(index)
        if cell["kind"] == "code" and not re.fullmatch(r"\[\d+\]:", cell["prompt"]):
            if index < len(run.nb.cells) and run.nb.cells[index].source.strip():
                not_run.append(index)
        # a chapter may show an error on purpose: such cells carry `raises-exception`
        shows_error = index < len(run.nb.cells) and "raises-exception" in run.nb.cells[
            index
        ].metadata.get("tags", [])
        for out in cell["outputs"]:
            text = out["text"]
            where = "inside a widget" if out["nested"] else "output"
            if out["mime"] == "application/vnd.jupyter.stderr":
                kind = (
                    "error"
                    if "Traceback" in text or re.search(r"\w+(Error|Exception)\b", text)
                    else "stderr"
                )
                if not (kind == "error" and shows_error and not out["nested"]):
                    problems.append(f"{label}: {kind} {where}:\n{_quote(text)}")
            elif any(s in text for s in WIDGET_FAILED):
                problems.append(f"{label}: widget failed to render:\n{_quote(text)}")
            elif out["mime"] == "text/plain" and WIDGET_REPR.match(text):
                problems.append(
                    f"{label}: a widget shows as text (is the ipywidgets labextension installed?):\n{_quote(text)}"
                )
            for image in out["images"]:
                if not image["loaded"] or image["width"] == 0:
                    problems.append(f"{label}: an image did not load ({out['mime']})")
    if not_run:
        listed = ", ".join(str(i) for i in not_run[:10]) + (" ..." if len(not_run) > 10 else "")
        problems.append(
            f"{len(not_run)} code cell(s) did not run: {listed} (first: {run.cell_label(not_run[0])})"
        )
    if expect.expects_figure and not any(o["images"] for c in cells for o in c["outputs"]):
        problems.append("no figure is shown as an image (expected at least one)")
    if expect.expects_progress:
        bars = [b for c in cells for b in c["progress"]]
        if not bars:
            problems.append("no tqdm progress bar rendered as a widget (expected one)")
        elif not any(b["width"] > 0 for b in bars):
            problems.append(f"the progress bars have no width: {[b['text'] for b in bars]}")
    if expect.expects_widget and not any(c["sliders"] for c in cells):
        problems.append("no slider widget rendered (expected an ipywidgets slider)")
    return problems


@dataclass
class Report:
    path: str
    problems: list[str]
    notes: list[str]
    screenshots: list[Path]

    @property
    def message(self) -> str:
        found = f"{len(self.problems)} problem(s)" if self.problems else "no problems"
        lines = [f"{self.path} in JupyterLab: {found}"]
        lines += [f"  - {p}" for p in self.problems]
        lines += [f"  ({n})" for n in self.notes]
        shown = ", ".join(_relative(p) for p in self.screenshots) or "none"
        lines.append(f"  screenshots: {shown}")
        return "\n".join(lines)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def check_notebooks(
    context,
    lab: JupyterLab,
    notebooks: list[Notebook],
    *,
    open_timeout_s: float = 90.0,
    run_timeout_s: float = 300.0,
) -> dict[str, Report]:
    """Open every notebook in its own page, run all cells in all of them at once,
    then check each page. Returns a :class:`Report` per notebook path.

    ``run_timeout_s`` bounds each notebook's Run All, which shares the CPU with every
    other notebook of the run: with 16 notebooks on 2 cores, Lab 5 (44 s alone in
    FAST mode) once needed more than 150 s. Run times themselves are ``make bench``'s
    to measure, against each notebook's budget.
    """
    runs = []
    for notebook in notebooks:
        run = NotebookRun(context, lab, notebook)
        runs.append(run)
        run.step(open_timeout_s, run_timeout_s)
    while any(run.state in ("loading", "running") for run in runs):
        for run in runs:
            if run.state in ("loading", "running"):
                run.step(open_timeout_s, run_timeout_s)
        time.sleep(0.25)
    reports = {}
    for run in runs:
        begun = time.monotonic()
        reports[run.relpath] = inspect(run)
        run.notes.append(f"checked the page in {time.monotonic() - begun:.1f} s")
    return reports


def inspect(run: NotebookRun) -> Report:
    """Read the page of a finished run; screenshot it; close it and stop its kernel."""
    if run.state == "done" or run.opened > run.started:
        shown = f"{run.shown - run.started:.1f}" if run.shown else "-"
        run.notes.append(
            f"cells shown after {shown} s, kernel ready after {run.opened - run.started:.1f} s, "
            f"Run All took {run.finished - run.opened:.1f} s"
        )
    shots: list[Path] = []
    try:
        if run.state == "done":
            _inspect(run)
    except Exception as error:  # a timeout or a page that broke: report it with the rest
        run.problems.append(f"{type(error).__name__}: {error}".strip()[:2000])
    finally:
        try:
            shots = run.screenshot(SCREENSHOTS / f"{run.name}.png")
        finally:
            run.close()
            run.lab.shutdown_session(run.relpath)
    return Report(run.relpath, run.problems, run.notes, shots)


def dialog_text(page) -> str:
    """Text of the open JupyterLab dialog, or "" when none is open.

    A dialog can close between counting it and reading it (JupyterLab closes the
    "Select Kernel" dialog itself once a kernel starts), so the read waits briefly
    and an empty answer means "no dialog", never a 30-second stall.
    """
    dialogs = page.locator(".jp-Dialog")
    if not dialogs.count():
        return ""
    try:
        return dialogs.first.inner_text(timeout=2000) or ""
    except Exception:  # playwright's TimeoutError: the dialog closed meanwhile
        return ""


def _inspect(run: NotebookRun) -> None:
    expect = run.notebook
    run.wait_widgets()
    run.problems += find_problems(run, run.read_cells(), expect)
    if expect.expects_widget:
        problem, what = run.move_slider()
        if problem:
            run.problems.append(problem)
        if what:
            run.notes.append(what)
        # a redraw that failed shows its error inside the widget
        again = find_problems(run, run.read_cells(), replace(expect, expects_figure=False))
        run.problems += [p for p in again if p not in run.problems]
    text = dialog_text(run.page)
    if text:
        run.problems.append(f"a dialog is open:\n{_quote(text)}")
    if run.problems and run.console_errors:
        run.notes.append("browser console errors: " + " | ".join(run.console_errors[:5]))

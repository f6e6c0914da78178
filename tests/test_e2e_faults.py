"""Every fault slug of the simulator, through the real `stackspot-tui run` over loopback.

The runs go a few at a time against one `stackspot-tui simulate` (they spend most of their time
waiting; more at once would starve the machine), then each test checks one of them. The module
runs on one xdist worker (`xdist_group`), so the runs happen once. Progress modes go through
the real program in `make bench`.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SimProcess, last_json_line, program, start_simulator

from stackspot_tui.sim import FAULTS
from stackspot_tui.store import HistoryStore

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-faults")]

DURATION = 0.6
SIM_FAILURE = "Simulated failure: the LLM step raised an error"

# slug -> (exit code, words in the one error line or, on success, in the -v progress)
EXPECTED: dict[str, tuple[int, list[str]]] = {
    "sim-failure": (1, [SIM_FAILURE]),
    "sim-failure-message": (1, [SIM_FAILURE]),
    "sim-failure-details": (1, [SIM_FAILURE]),
    "sim-failure-progress": (1, [SIM_FAILURE]),
    "sim-failure-step": (1, ["step 3 (generate): " + SIM_FAILURE]),
    "sim-failure-web": (1, ["step 2 (fetch-context): HTTP 502 · Bad Gateway: the ticket service did not answer"]),
    "sim-failure-silent": (1, ["without an explanation; it stopped at step 3 (generate)"]),
    "sim-web-steps": (
        0,
        [
            '  step 1 · get-ticket done · HTTP 200 · {"ticket": 42, "title": "Login fails"}',
            '  step 3 · get-missing failed · HTTP 404 · {"detail": "Not Found"}',
            '  step 4 · get-json-only done · HTTP 201 · {"id": "a1", "tags": ["x", "y"]}',
            "  step 5 · get-large done · HTTP 200 · row,row,",
        ],
    ),
    "sim-stuck-created": (0, ["still CREATED after", "still waiting", "COMPLETED in"]),
    "sim-html-poll": (0, ["server error: the execution callback answered HTTP 200 with text/html", "COMPLETED in"]),
    "sim-malformed": (3, ["text/html instead of a JSON object"]),
    "sim-server-error": (0, ["server error: StackSpot failed on execution", "(HTTP 503)", "COMPLETED in"]),
    "sim-rate-limit": (0, ["rate limited:", "waiting 1.0 s", "COMPLETED in"]),
    "sim-rate-limit-minute": (0, ["rate limited:", "Your limit is 20 requests in the last 1 minutes", "COMPLETED in"]),
    "sim-quota": (1, ["quota used up", "Your limit is 50 requests in the last 1440 minutes", "will not help"]),
    "sim-forbidden": (1, ["no access to quick command 'sim-forbidden' (HTTP 403): You do not have access"]),
    "sim-invalid": (
        1,
        ["(HTTP 422): body.input_data: ensure this value has at most 8 characters; query.conversation_id: not a valid"],
    ),
    "sim-not-found-bare": (1, ["quick command 'sim-not-found-bare' not found (HTTP 404): Not Found"]),
    "sim-not-found-detail": (1, ["quick command 'sim-not-found-detail' not found (HTTP 404): Not Found"]),
    "sim-slow": (3, ["did not finish within 1 s", "resume"]),
    "sim-unknown-status": (0, ["COMPLETED in"]),  # whether a poll lands while QUEUED is timing: see the unit test
    "sim-json-result": (0, ["COMPLETED in"]),
    "sim-object-result": (0, ["COMPLETED in"]),
}
CONFIG = {"sim-stuck-created": "created_warning = 0.2\n", "sim-malformed": "max_retries = 1\n"}
FLAGS = {"sim-slow": ["--timeout", "1"]}
BAD_SLUGS = ["has space", "x" * 86]
AT_ONCE = 4


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    data_dir: Path

    def error_line(self) -> str:
        assert "Traceback" not in self.stderr and "unexpected" not in self.stderr, self.stderr
        lines = [line for line in self.stderr.splitlines() if line.startswith("stackspot-tui: error: ")]
        assert len(lines) == 1, self.stderr
        return lines[0]

    def turns(self) -> list:
        store = HistoryStore(self.data_dir / "history")
        return [turn for conversation in store.list_conversations() for turn in store.turns(conversation.id)]


def launch(sim: SimProcess, data_dir: Path, args: list[str], config: str = "") -> tuple[subprocess.Popen, Path]:
    data_dir.mkdir(parents=True)
    (data_dir / "no-config.toml").write_text(config)
    process = subprocess.Popen(
        [*program(), *args], env=sim.env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return process, data_dir


def finish(started: tuple[subprocess.Popen, Path]) -> Run:
    process, data_dir = started
    out, err = process.communicate(timeout=120)
    return Run(process.returncode, out.decode(), err.decode(), data_dir)


@pytest.fixture(scope="module")
def sim():
    with start_simulator(DURATION) as process:
        yield process


@pytest.fixture(scope="module")
def runs(sim, tmp_path_factory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("runs")
    jobs = {
        slug: (root / slug, ["run", slug, "-v", *FLAGS.get(slug, []), "x = 1"], CONFIG.get(slug, "")) for slug in FAULTS
    }
    jobs.update({slug: (root / f"bad-{n}", ["run", slug, "hi"], "") for n, slug in enumerate(BAD_SLUGS)})

    def one(name: str) -> Run:
        data_dir, args, config = jobs[name]
        return finish(launch(sim, data_dir, args, config))

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


def test_every_fault_slug_is_covered():
    assert set(EXPECTED) == set(FAULTS)


@pytest.mark.parametrize("slug", sorted(FAULTS))
def test_fault_slug_through_run(runs, slug):
    code, words = EXPECTED[slug]
    run = runs[slug]
    assert run.returncode == code, run.stderr
    if code == 0:
        assert all(word in run.stderr for word in words), run.stderr
        assert run.stdout.strip() and "Traceback" not in run.stderr
        return
    line = run.error_line()
    assert all(word in line for word in words), line
    [turn] = run.turns()  # the turn and why it ended are on disk
    assert turn.error and turn.needs_reattach == (code == 3)


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_a_refused_slug_is_a_usage_error_and_saves_nothing(runs, sim, slug):
    run = runs[slug]
    assert run.returncode == 2
    assert "is not a quick command slug" in run.error_line() or "characters long" in run.error_line()
    assert not (run.data_dir / "history").exists()
    assert not [r for r in sim.requests() if "create-execution" in r["path"] and slug[:3] in r["path"]]


def test_object_input_shape_setting(tmp_path):
    strict = start_simulator(0.2, "--object-input", "json")
    try:
        refused = finish(launch(strict, tmp_path / "plain", ["run", "echo", "--json-input", '{"a": 1}']))
        assert refused.returncode == 1 and "body.input_data.json: field required" in refused.error_line()
        wrapped = ["run", "echo", "--json-input", "--json", '{"a": 1}']
        accepted = finish(launch(strict, tmp_path / "wrapped", wrapped, 'object_input = "json"\n'))
        assert accepted.returncode == 0, accepted.stderr
        assert json.loads(last_json_line(accepted.stdout.encode())["result"]) == {"a": 1}
    finally:
        strict.process.terminate()
        strict.process.wait(timeout=10)

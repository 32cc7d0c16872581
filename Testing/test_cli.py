"""The command line, run as a user runs it (a subprocess of the installed console script)."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visceral", *args], capture_output=True, text=True, timeout=120)


def test_selfcheck_on_the_seed_examples() -> None:
    result = run("selfcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    assert "subject21_1_modalityCT_regionannotation_label32_3.nii" in result.stdout


def test_names_command_reports_bad_names_in_one_line_and_goes_on() -> None:
    result = run("names", "subject21_1_CT.nii", "10000001_3_MRT1_wb_58_4.nii.gz")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: subject21_1_CT.nii: token 3 'CT': expected 'modality<name>', 'regionannotation' or 'lmannotation'"
    ]
    assert "label=58" in result.stdout and "canonical=subject10000001_3_modalityMRT1_regionannotation_label58_4.nii.gz" in result.stdout
    assert "Traceback" not in result.stderr


def test_no_command_prints_help() -> None:
    result = run()
    assert result.returncode == 2 and "selfcheck" in result.stdout


def test_progress_bar_draws_on_a_terminal_and_writes_one_line_per_stage_elsewhere() -> None:
    import io

    from visceral.progress import ProgressBar

    log = io.StringIO()
    bar = ProgressBar(log)
    for done in range(1, 101):
        bar(done, 100, "de-identifying")
    for done in range(1, 4):
        bar(done, 3, "writing")
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("de-identifying: 100/100 in") and lines[1].startswith("writing: 3/3")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = ProgressBar(screen)
    for done in range(1, 11):
        bar(done, 10, "converting")
    assert screen.getvalue().count("\r") == 10 and screen.getvalue().endswith("10/10\n") or "10/10" in screen.getvalue()

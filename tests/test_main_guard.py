"""A script that searches with worker processes needs ``if __name__ == "__main__":``.

Each test runs a real script in a subprocess, as a user runs it.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

SEARCH = """
import symbolic_nas as sn


def evaluate(arch):
    return float(arch["k"])


def search():
    return sn.search({"k": sn.oneof([1, 2, 3])}, evaluate, algorithm="random", num_trials=2,
                     workers=2, run_dir="run", seed=0, tensorboard=False, progress=False)
"""

GUARD = 'if __name__ == "__main__":'


def run_script(tmp_path: pathlib.Path, text: str, *, stdin: bool = False):
    script = tmp_path / "script.py"
    script.write_text(text)
    args = [sys.executable, "-"] if stdin else [sys.executable, str(script)]
    return subprocess.run(
        args,
        cwd=tmp_path,
        input=text if stdin else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(150)
def test_an_unguarded_script_gets_one_clear_error_and_no_run_dir(tmp_path):
    proc = run_script(tmp_path, SEARCH + "\nresult = search()\nprint('best', result.best.reward)\n")
    assert proc.returncode == 1
    assert proc.stderr.count("Traceback") == 1, proc.stderr
    assert "MainGuardError" in proc.stderr and GUARD in proc.stderr
    assert "script.py' (line 13)" in proc.stderr  # the unguarded line
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(150)
def test_a_script_from_stdin_gets_a_clear_error(tmp_path):
    text = SEARCH + f"\n{GUARD}\n    print('best', search().best.reward)\n"
    proc = run_script(tmp_path, text, stdin=True)
    assert proc.returncode == 1
    assert proc.stderr.count("Traceback") == 1, proc.stderr
    assert "MainGuardError" in proc.stderr and "'<stdin>'" in proc.stderr
    assert "FileNotFoundError" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(150)
def test_a_guarded_script_searches_with_workers(tmp_path):
    text = SEARCH + f"\n{GUARD}\n    result = search()\n    print('trials', len(result.trials))\n"
    proc = run_script(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert "trials 2" in proc.stdout
    assert (tmp_path / "run" / "journal.jsonl").exists()


@pytest.mark.timeout(150)
def test_a_search_run_by_a_spawned_process_importing_the_script_is_refused(tmp_path):
    # The driver's search uses no workers, so only the worker's bootstrap can tell.
    text = f"""
import multiprocessing
import symbolic_nas as sn


def evaluate(arch):
    return float(arch["k"])


def noop():
    pass


sn.search({{"k": sn.oneof([1, 2])}}, evaluate, algorithm="random", num_trials=1,
          tensorboard=False, progress=False)

{GUARD}
    process = multiprocessing.get_context("spawn").Process(target=noop)
    process.start()
    process.join()
    print("exitcode", process.exitcode)
"""
    proc = run_script(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert "exitcode 1" in proc.stdout
    assert "MainGuardError" in proc.stderr and "while a worker process was importing" in proc.stderr


def test_code_that_is_not_the_scripts_own_top_level_is_let_through(tmp_path, monkeypatch):
    # A notebook cell or exec'd code runs as "__main__" too, but from no script file line.
    import types

    from symbolic_nas.tuner.executors import main_guard

    script = tmp_path / "launcher.py"
    script.write_text("import sys\n\nsys.exit(0)\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    cell = {"__name__": "__main__", "check": main_guard.check_main_module}
    exec(compile("check()", "<cell 1>", "exec"), cell)  # no error
    with pytest.raises(main_guard.MainGuardError, match=r"launcher.py' \(line 1\)"):
        exec(compile("check()", str(script), "exec"), cell)


def test_guard_blocks_are_found_in_any_spelling(tmp_path):
    from symbolic_nas.tuner.executors.main_guard import _guard_lines

    script = tmp_path / "s.py"
    script.write_text(
        "x = 1\n"
        "if '__main__' == __name__:\n    a = 1\n    b = 2\n"
        'if __name__ == "__main__" and x:\n    c = 3\n'
        "if __name__ != '__main__':\n    d = 4\n"
    )
    assert _guard_lines(str(script)) == [(3, 4), (6, 6)]
    script.write_text("def broken(:\n")
    assert _guard_lines(str(script)) is None  # cannot tell: the worker-side check remains

"""Every command example in README.md and docs/*.md runs, as typed, in a fresh world per page (see
tests/doc_examples.py for the world, the fakes and the caps on budgets); a new example cannot land untested."""

from __future__ import annotations

import ast
import os
import re
import shlex
import signal
import subprocess

import pytest

from doc_examples import (DOCS, REPO, RUN_BY_JOURNEY, all_blocks, blocks, chains, covering_chains, free_port,
                          make_world,
                          provide_models, runs, script_for, shrink, write_nb201_data)

pytestmark = pytest.mark.journey

def run_block(argv, cwd, env):
    """Run one block in its own process group, and end whatever it left running (an agent) afterwards. Output
    goes to files, not pipes: a background agent would keep a pipe open after the block ends."""
    with open(cwd / ".block.out", "w+") as out, open(cwd / ".block.err", "w+") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=600)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())


# (page, chain): each chain of a page's blocks runs as its own test, in its own fresh world
# a chain that another page's chain runs word for word is left to it (doc_examples.covering_chains)
COVERED = covering_chains(DOCS)
RUNNABLE = [(p, i) for p in DOCS for i, _ in enumerate(chains(p)) if (p, i) not in COVERED]


def test_every_command_block_runs_or_says_why_not():
    for block in all_blocks():
        if block.has_commands and block.mark == "not-run":
            assert len(block.why) >= 10, f"{block.where}: not-run needs a reason"
    for page in DOCS:  # a mark sits on the line right before an opening fence, nowhere else
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "<!-- example:" in line:
                assert i + 1 < len(lines) and lines[i + 1].lstrip().startswith("```"), f"{page.name}:{i + 1}"
    kinds = {b.mark for b in all_blocks()}
    assert kinds <= {None, "install", "benchmark", "not-run", "new-world"}
    assert RUNNABLE, "no runnable examples found: the extraction is broken"


def test_the_install_block_is_what_ci_runs():
    (install,) = [b for b in blocks(REPO / "README.md") if b.mark == "install"]
    commands = [re.sub(r"\s+#.*$", "", c) for c in install.commands()]
    ci = (REPO / ".ci" / "run").read_text()
    ci_commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")
                   and not line.startswith(("set ", "cd "))]
    # beside them, the servers some tests need (never a step of the user's install: without them those tests skip),
    # started in the background before the install and waited for before the tests
    assert ci_commands == ["bash .ci/test-servers & servers=$!", commands[0], 'wait "$servers"', commands[1]], (
        ci_commands, commands)


def test_benchmark_blocks_name_real_scripts_and_flags():
    for block in (b for b in all_blocks() if b.mark == "benchmark"):
        for command in block.commands():
            words = shlex.split(re.sub(r"\s+#.*$", "", command))
            scripts = [w for w in words if w.startswith("benchmarks/") and w.endswith(".py")]
            if not scripts:
                continue
            source = (REPO / scripts[0]).read_text()
            for flag in (w.split("=")[0] for w in words if w.startswith("--")):
                assert f'"{flag}"' in source, f"{block.where}: {scripts[0]} has no flag {flag}"


def test_commands_left_to_journeys_are_run_by_them():
    """A command the pages leave to a journey is in a page and is run, word for word and uncapped, by a
    ``run_hwnas([...])`` call in the named journey test."""
    typed = {c for b in all_blocks() if runs(b) for c in b.commands()}
    for command, (path, name) in RUN_BY_JOURNEY.items():
        assert command in typed, f"{command!r} is in no runnable block any more: drop it from RUN_BY_JOURNEY"
        tree = ast.parse((REPO / path).read_text())
        (test,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
        argvs = [[ast.literal_eval(e) for e in call.args[0].elts] for call in ast.walk(test)
                 if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "run_hwnas"
                 and isinstance(call.args[0], ast.List) and all(isinstance(e, ast.Constant) for e in call.args[0].elts)]
        assert shlex.split(command)[1:] in argvs, f"{path}::{name} does not run {command!r} as typed: {argvs}"


@pytest.fixture(scope="module")
def nb201_data(tmp_path_factory):
    return write_nb201_data(tmp_path_factory.mktemp("third_party") / "nb201")


def chain_id(page, i: int) -> str:
    rel = str(page.relative_to(REPO))
    return rel if len(chains(page)) == 1 else f"{rel}#{i + 1}"


@pytest.mark.parametrize(("page", "chain"), RUNNABLE, ids=[chain_id(p, i) for p, i in RUNNABLE])
def test_examples_run_as_typed(page, chain, tmp_path, nb201_data, shared_export_cache):
    port = free_port()
    project, env = make_world(tmp_path, nb201_data, export_cache=shared_export_cache, agent_port=port)
    page_blocks = chains(page)[chain]
    if any(re.search(r"models/|\.onnx|\.tflite", b.text) for b in page_blocks):
        provide_models(project, tflite=any("mobilenet_v2.tflite" in b.text for b in page_blocks))
    for block in page_blocks:
        if block.lang == "python":
            argv, script = ["python", "-c", block.text], block.text
        else:
            script = script_for(block, agent_port=port)
            argv = ["bash", "-c", script]
        ran = run_block(argv, project, env)
        print("\n".join(line for line in ran.stderr.splitlines() if line.startswith(">>> ")))  # `-rP`: per command
        shown = f"{block.where}\n--- script\n{script}\n--- stderr\n{ran.stderr[-4000:]}\n--- stdout\n{ran.stdout[-2000:]}"
        assert ran.returncode == 0, shown
        assert "Traceback" not in ran.stderr + ran.stdout, shown
        for command in ([] if block.lang == "python" else block.commands()):
            words = shlex.split(command, comments=True)
            for flag, value in zip(words, words[1:]):
                if flag == "--out" and words[:1] == ["hwnas"]:
                    assert (project / value).exists(), f"{block.where}: --out {value} was not written\n{shown}"


def test_a_new_world_mark_starts_a_chain(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\nhwnas spaces\n```\n\n```bash\nhwnas devices\n```\n\n<!-- example: new-world -->\n"
                    "```bash\nhwnas --help\n```\n\n<!-- example: not-run needs a phone here -->\n```bash\n"
                    "hwnas profile --device pixel\n```\n")
    assert [[b.commands() for b in chain] for chain in chains(page)] == [
        [["hwnas spaces"], ["hwnas devices"]], [["hwnas --help"]]]


def test_a_chain_another_page_runs_word_for_word_is_run_once(tmp_path):
    (tmp_path / "docs").mkdir()
    readme, page = tmp_path / "README.md", tmp_path / "docs" / "page.md"
    readme.write_text("```bash\nhwnas spaces\nhwnas devices   # a comment\n```\n\n<!-- example: new-world -->\n"
                      "```bash\nhwnas devices\nhwnas spaces\n```\n\n<!-- example: new-world -->\n"
                      "```bash\nhwnas spaces --help\n```\n")
    page.write_text("```bash\nhwnas spaces\nhwnas --help\n```\n\n```bash\nhwnas devices\n```\n")
    # README's first chain runs, in order, inside the page's chain; its second is out of order; its third is not there
    assert covering_chains([readme, page]) == {(readme, 0): (page, 0)}
    for chain in ([readme, page], [page, readme]):  # the page covers whatever the order of the pages
        assert covering_chains(chain) == {(readme, 0): (page, 0)}
    # the README is covered by the docs, never the reverse; and a chain lists the words it covers
    assert [c for p, i in COVERED for c in chains(p)[i][0].commands()]
    for (page_, i), (by, j) in COVERED.items():
        assert page_ != by and by.parent.name == "docs", (page_, by)
        assert (by, j) in RUNNABLE


def test_every_command_of_an_and_list_is_capped():
    """`hwnas devices && hwnas profile ...` (docs/security.md) ran its profile with the full protocol, 13 s per arch:
    each command of an `&&` list is capped like a command on its own line."""
    assert shrink("hwnas devices && hwnas profile --device raspberry-pi-4 --space nb201 --n 50") == (
        "hwnas devices && hwnas profile --device raspberry-pi-4 --space nb201 --n 2 --quick")
    assert shrink("cd x && hwnas pareto-search --budget 99") == "cd x && hwnas pareto-search --budget 8 --trust-archs 2"


def test_the_longest_tests_named_for_scheduling_exist():
    """tests/conftest.py's LONGEST_FIRST names tests by node id: a renamed test or doc chain falls silently to the
    back of the queue, so each name must still be a test (and each doc chain id a chain of its page)."""
    from conftest import LONGEST_FIRST

    chain_ids = {chain_id(p, i) for p, i in RUNNABLE}
    for node in LONGEST_FIRST:
        path, _, name = node.partition("::")
        func, _, param = name.partition("[")
        tree = ast.parse((REPO / path).read_text())
        assert func in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, node
        if func == "test_examples_run_as_typed":
            assert param.rstrip("]") in chain_ids, f"{node}: chains are {sorted(chain_ids)}"

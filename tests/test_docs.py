"""Every ```bash block in docs/*.md and README.md runs (or is dry-run checked), so the docs cannot rot.

The repository is copied to a temporary folder (git's tracked and untracked files, not
data/ or runs/) and each page's blocks run there in order with bash -euo pipefail, with
DS_ACCELERATOR=cpu, W&B offline and the Hugging Face hub offline. Pages share that folder:
the quickstart and corpus pages run first because the others use their demo run and
shards. The HTML comment on the line before a block says how to check it (docs/index.md
explains the markers):

    <!-- docs-test: run [OPTIONS] -->                run, adding OPTIONS (e.g. --set k=v) to
                                                     the launch scripts whose --help has them
    <!-- docs-test: dry-run -->                      --dry-run / --help / bash -n / CI check
    <!-- docs-test: skip REASON -->                  not checked (a reason is required)

No comment means run as written. README.md's blocks without a comment are dry-run
(README_DEFAULT): its commands are the long demo, the install and the full test suite, which
CI runs itself, and the docs pages run the same steps small.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import host_env

REPO = Path(__file__).resolve().parents[1]
FIRST_PAGES = ["docs/quickstart.md", "docs/corpus.md"]  # the others use what these make
README_DEFAULT = "dry-run"
BLOCK_TIMEOUT = 300
MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<mode>[\w-]+)(?P<arg>.*?)-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
LAUNCHERS = {"deepspeed", "torchrun", "srun", "accelerate"}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}


@dataclass
class Block:
    page: str  # path relative to the repository
    line: int  # 1-based line of the opening fence
    text: str
    mode: str  # "run", "dry-run" or "skip"
    arg: str  # --set overrides for run, the reason for skip

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def doc_pages() -> list[str]:
    pages = [str(p.relative_to(REPO)) for p in sorted((REPO / "docs").glob("*.md"))]
    first = [p for p in FIRST_PAGES if p in pages]
    rest = [p for p in pages if p not in first]
    return first + rest + (["README.md"] if (REPO / "README.md").is_file() else [])


def extract_blocks(page: str) -> list[Block]:
    """The ```bash blocks of a page with their markers; a malformed marker is an error."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise AssertionError(f"{page}:{i + 1}: code block never closed")
        if fence["lang"] == "bash":
            previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.match(previous.strip())
            if "docs-test" in previous and not marker:
                raise AssertionError(f"{page}:{i}: malformed docs-test marker: {previous!r}")
            mode = marker["mode"] if marker else (README_DEFAULT if page == "README.md" else "run")
            arg = marker["arg"].strip() if marker else ""
            if mode not in ("run", "dry-run", "skip"):
                raise AssertionError(f"{page}:{i}: unknown docs-test mode {mode!r} (run, dry-run, skip)")
            if mode == "skip" and not arg:
                raise AssertionError(f"{page}:{i}: 'docs-test: skip' needs a reason")
            if mode == "dry-run" and arg:
                raise AssertionError(f"{page}:{i}: 'docs-test: dry-run' takes no arguments, got {arg!r}")
            blocks.append(Block(page, i + 1, "\n".join(lines[i + 1 : end]), mode, arg))
        i = end + 1
    return blocks


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined and heredoc bodies dropped."""
    out, current, heredoc_end = [], "", None
    for line in text.splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        if current:
            line = line.lstrip()
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1].rstrip() + " "
            continue
        current += line
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", current)
        if heredoc:
            heredoc_end = heredoc.group(1)
        if current.strip() and not current.strip().startswith("#"):
            out.append(current)
        current = ""
    return out


def simple_commands(line: str) -> list[list[str]]:
    """argv lists of a shell line split at && || ; | (comments and env assignments dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, argv = [], []
    for token in lexer:
        if token in SHELL_OPERATORS or set(token) <= set("&|;()<>"):
            if argv:
                commands.append(argv)
            argv = []
            continue
        if not argv and ENV_ASSIGNMENT.match(token):
            continue
        argv.append(token)
    if argv:
        commands.append(argv)
    return commands


def script_of(argv: list[str]) -> tuple[str, list[str]] | None:
    """(script.py, its arguments) for `python x.py ...` and `deepspeed/torchrun/srun ... x.py ...`."""
    if argv[0] in ("python", "python3") or argv[0] in LAUNCHERS:
        for k, token in enumerate(argv[1:], 1):
            if token.endswith(".py"):
                return token, argv[k + 1 :]
            if argv[0].startswith("python") and token == "-m":
                return None
    return None


class Sandbox:
    """A copy of the repository where the docs' commands run, page after page."""

    def __init__(self, root: Path):
        self.root = root
        self.done_pages: set[str] = set()
        self.done_blocks: dict[str, str] = {}  # command text -> where it ran first
        self.timings: list[tuple[str, float]] = []
        self.help_texts: dict[str, str] = {}
        self.ci_commands = [
            simple_commands(line)[0]
            for line in logical_lines((REPO / ".ci" / "run").read_text())
            if line.strip()
        ]
        env = {k: v for k, v in host_env().items() if not k.startswith(("WANDB_API", "SLURM_"))}
        env.update(
            DS_ACCELERATOR="cpu",
            WANDB_MODE="offline",
            WANDB_SILENT="true",
            HF_HUB_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            HF_HOME=str(root / ".hf_home"),
            MPLBACKEND="Agg",
            TOKENIZERS_PARALLELISM="false",
            PYTHONPATH=str(root),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.env = env

    @classmethod
    def create(cls, root: Path) -> Sandbox:
        try:
            files = (
                subprocess.run(
                    ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                    cwd=REPO,
                    capture_output=True,
                    check=True,
                )
                .stdout.decode()
                .split("\0")
            )
        except (OSError, subprocess.CalledProcessError):  # not a git checkout: copy all but outputs
            files = [
                str(p.relative_to(REPO))
                for p in REPO.rglob("*")
                if p.is_file()
                and not {"data", "runs", ".git", "__pycache__"} & set(p.relative_to(REPO).parts)
            ]
        for name in filter(None, files):
            source = REPO / name
            if source.is_symlink():  # e.g. configs -> bloomberg_style/configs
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.readlink(source), root / name)
            elif source.is_file():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, root / name)
        return cls(root)

    def bash(self, script: str, block: Block, timeout: int = BLOCK_TIMEOUT) -> None:
        start = time.perf_counter()
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,  # an interactive command fails instead of waiting
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.timings.append((block.where, time.perf_counter() - start))
        if proc.returncode != 0:
            raise AssertionError(
                f"{block.where}: the docs' command failed ({proc.returncode}):\n{script}\n"
                f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
            )

    # ---- the three modes --------------------------------------------------------------
    def run(self, block: Block) -> None:
        text = block.text
        if block.arg:
            args = block.arg
            options = [a for a in shlex.split(args) if a.startswith("--")]
            if not options:
                raise AssertionError(f"{block.where}: 'docs-test: run' takes options to add, got {args!r}")
            used = []

            def add_args(match: re.Match) -> str:
                if all(self.has_option(match[1], o) for o in options):
                    used.append(match[1])
                    return f"{match[1]} {args}"
                return match[1]

            text = re.sub(r"(launch/[\w/]+\.py)", add_args, text)
            if not used:
                raise AssertionError(f"{block.where}: no launch script in the block takes {options}")
        if text in self.done_blocks:  # the same commands on the same files: already checked
            return
        self.bash(text, block)
        self.done_blocks[text] = block.where

    def has_option(self, script: str, option: str) -> bool:
        if script not in self.help_texts:
            proc = subprocess.run(
                [sys.executable, script, "--help"],
                cwd=self.root,
                env=self.env,
                capture_output=True,
                text=True,
            )
            self.help_texts[script] = proc.stdout if proc.returncode == 0 else ""
        return option in self.help_texts[script]

    def dry_run(self, block: Block) -> None:
        checks = []
        for line in logical_lines(block.text):
            for argv in simple_commands(line):
                checks += self.dry_run_command(argv, block)
        checks.append(f"bash -n -c {shlex.quote(block.text)}")
        self.bash("\n".join(checks), block)

    def dry_run_command(self, argv: list[str], block: Block) -> list[str]:
        """Shell checks for one command that is not to be run for real."""
        words = argv[2:] if argv[:2] in (["python", "-m"], ["python3", "-m"]) else argv
        if words[:2] == ["pip", "install"] or words[:1] == ["pytest"]:
            if argv not in self.ci_commands:
                raise AssertionError(f"{block.where}: {shlex.join(argv)!r} is not what .ci/run runs")
            return []
        if argv[0] == "sbatch":
            job = next((a for a in argv[1:] if a.endswith((".sbatch", ".sh"))), None)
            if job is None or not (self.root / job).is_file():
                raise AssertionError(f"{block.where}: sbatch script {job!r} not found")
            configs = [a for a in argv[1:] if a.endswith((".yaml", ".yml", ".json"))]
            missing = [c for c in configs if not (self.root / c).is_file()]
            if missing:
                raise AssertionError(f"{block.where}: {missing} not found")
            return [f"bash -n {shlex.quote(job)}"]
        found = script_of(argv)
        if found is not None:
            script, args = found
            if not (self.root / script).is_file():
                raise AssertionError(f"{block.where}: {script} not found")
            python = shlex.quote(sys.executable)
            if self.has_option(script, "--dry-run"):
                args = [a for a in args if a != "--dry-run"]
                return [f"{python} {shlex.join([script, *args, '--dry-run'])} > /dev/null"]
            if self.help_texts[script]:
                return []  # its --help ran fine just now
            return [f"{python} {shlex.quote(script)} --help > /dev/null"]  # failed: rerun to show why
        if argv[0].startswith("python") and len(argv) > 2 and argv[1] == "-m":
            return [f"{shlex.quote(sys.executable)} -m {shlex.quote(argv[2])} --help > /dev/null"]
        return []  # other commands: the block's bash -n covers their syntax

    def page(self, page: str) -> None:
        """Run a page's blocks (once per sandbox), after the pages it builds on."""
        if page in self.done_pages:
            return
        if page not in FIRST_PAGES:
            for first in FIRST_PAGES:
                if (REPO / first).is_file():
                    self.page(first)
        for block in extract_blocks(page):
            if block.mode == "run":
                self.run(block)
            elif block.mode == "dry-run":
                self.dry_run(block)
        self.done_pages.add(page)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    return Sandbox.create(tmp_path_factory.mktemp("docs_sandbox"))


@pytest.mark.slow
@pytest.mark.parametrize("page", doc_pages())
def test_page_commands_run(sandbox, page):
    sandbox.page(page)


def test_markers_and_links_are_well_formed():
    """Every bash block parses as shell, markers are valid, links to other pages resolve."""
    pages = doc_pages()
    assert "docs/quickstart.md" in pages and "docs/evaluation.md" in pages
    blocks = [b for p in pages for b in extract_blocks(p)]
    assert len(blocks) > 20
    for block in blocks:
        proc = subprocess.run(["bash", "-n", "-c", block.text], capture_output=True, text=True)
        assert proc.returncode == 0, f"{block.where}: not valid bash: {proc.stderr}"
    for page in pages:
        text = (REPO / page).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+\.md)\)", text):
            assert ((REPO / page).parent / target).is_file(), f"{page}: link to missing {target}"


def test_dry_run_checks_catch_mistakes(tmp_path):
    """The checks can fail: a wrong install line, a missing script, a missing config."""
    box = Sandbox(REPO)

    def block(text: str) -> Block:
        return Block("x.md", 1, text, "dry-run", "")

    with pytest.raises(AssertionError, match="not what .ci/run runs"):
        box.dry_run_command(["pip", "install", "-e", "."], block("pip install -e ."))
    with pytest.raises(AssertionError, match="launch/nope.py not found"):
        box.dry_run_command(["python", "launch/nope.py"], block("python launch/nope.py"))
    with pytest.raises(AssertionError, match="not found"):
        box.dry_run_command(
            ["sbatch", "launch/slurm/pretrain.sbatch", "configs/missing.yaml"], block("sbatch")
        )
    assert simple_commands('A=1 python launch/x.py --a "b c" && echo hi # note') == [
        ["python", "launch/x.py", "--a", "b c"],
        ["echo", "hi"],
    ]
    assert script_of(["deepspeed", "--num_gpus", "8", "launch/pretrain.py", "--config", "c.yaml"]) == (
        "launch/pretrain.py",
        ["--config", "c.yaml"],
    )
    assert logical_lines("cat > f <<'EOF'\nname: x\nEOF\npython a.py \\\n  --b 1\n# comment") == [
        "cat > f <<'EOF'",
        "python a.py --b 1",
    ]

"""The README's table of commands names every command CertDesk adds to `certdesk`, and the
commands' help speaks to the person running them (no source file to go and read)."""

from __future__ import annotations

import re
from pathlib import Path

from webapp import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _table_of_commands() -> str:
    text = README.read_text()
    start = text.index("## Commands")
    return text[start : text.index("\n## ", start + 1)]


def test_every_command_is_in_the_readme_table():
    table = _table_of_commands()
    listed = set(re.findall(r"^\| `certdesk ([a-z-]+)", table, re.M))
    ours = {command.name for command in cli.COMMANDS}
    assert ours <= listed, sorted(ours - listed)


def test_no_help_text_sends_the_reader_to_the_source():
    for command in cli.COMMANDS:
        texts = [command.help or ""] + [getattr(p, "help", "") or "" for p in command.params]
        for text in texts:
            assert not re.search(r"\w+/\w+\.py", text), (command.name, text)


def test_only_certdesks_own_commands_are_offered():
    """Flask's development server (`run`, which neither migrates nor starts the scheduler),
    `shell` and `routes` are not CertDesk commands; `db` (migrations) is."""
    from click.testing import CliRunner

    runner = CliRunner()
    shown = runner.invoke(cli.cli, ["--help"]).output
    commands = shown[shown.index("Commands:") :]
    offered = set(re.findall(r"^  ([a-z-]+)  ", commands, re.M))
    assert offered == {command.name for command in cli.COMMANDS} | {"db"}, offered
    refused = runner.invoke(cli.cli, ["run"])
    assert refused.exit_code != 0 and "No such command 'run'" in refused.output

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


def test_only_certdesks_own_options_are_offered():
    """Flask's --app, --env-file and --debug name nothing a CertDesk user sets (its settings are
    CERTDESK_* variables), and its --version gave Flask's version: `certdesk --help` offers
    --version (CertDesk's) and --help alone."""
    from importlib.metadata import version

    from click.testing import CliRunner

    runner = CliRunner()
    shown = runner.invoke(cli.cli, ["--help"]).output
    options = shown[shown.index("Options:") : shown.index("Commands:")]
    assert re.findall(r"^  (-[-\w]+)", options, re.M) == ["--version", "--help"], options
    assert "Flask" not in shown and "dotenv" not in shown
    said = runner.invoke(cli.cli, ["--version"])
    assert said.exit_code == 0 and said.output == f"CertDesk {version('certdesk')}\n"


def test_db_help_sets_the_developers_commands_apart():
    """`certdesk db --help` lists under Commands what an operator runs (upgrade, current, ...);
    Flask-Migrate's commands that write migrations or move the recorded version (revision,
    downgrade, stamp, ...) come under a heading of their own, and still run."""
    from click.testing import CliRunner

    runner = CliRunner()
    shown = runner.invoke(cli.cli, ["db", "--help"]).output
    operator = shown[shown.index("Commands:") : shown.index("For CertDesk's developers:")]
    developer = shown[shown.index("For CertDesk's developers:") :]
    listed = set(re.findall(r"^  ([a-z-]+)  ", operator, re.M))
    assert listed == {"upgrade", "current", "heads", "history", "show"}, listed
    apart = set(re.findall(r"^  ([a-z-]+)  ", developer, re.M))
    assert {"revision", "migrate", "downgrade", "stamp", "merge", "edit", "init"} <= apart
    assert listed | apart == set(cli.db_group.commands)
    assert "restore the backup made before the upgrade" in developer
    for name in ("revision", "downgrade", "stamp"):
        assert runner.invoke(cli.cli, ["db", name, "--help"]).exit_code == 0, name


def test_the_readme_names_only_db_commands_an_operator_runs():
    table = _table_of_commands()
    named = set(re.findall(r"`certdesk db ([a-z][a-z-]*)", README.read_text()))
    assert named and named <= set(cli.OPERATOR_DB_COMMANDS), named
    assert "`certdesk db upgrade`" in table


def test_every_setting_read_from_the_environment_is_in_the_readme_table():
    """Configuration's table names each CERTDESK_ setting CertDesk reads (a row may name a
    family: `CERTDESK_DEMO_SANDBOX_URL`, `_USER`...), and names none it does not read."""
    from webapp import config

    text = README.read_text()
    start = text.index("## Configuration")
    table = text[start : text.index("\n## ", start + 1)]
    named = set()
    for row in re.findall(r"^\| (`CERTDESK_[^|]+)\|", table, re.M):
        first, *rest = re.findall(r"`([A-Z_]+)`", row)
        named.add(first.removeprefix("CERTDESK_"))
        stem = first.removeprefix("CERTDESK_").rsplit("_", 1)[0]
        named.update(stem + suffix for suffix in rest)
    read = set(config.FROM_ENVIRONMENT) | {"INSTANCE"}
    assert read - named == set(), sorted(read - named)
    assert named - read == set(), sorted(named - read)

"""Command lines: each command's --help lists its options and the settings it reads."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Coroutine
from typing import Any

from common.runtime import run_main
from common.settings import Settings, SettingsError

WIDTH = 88
INDENT = " " * 6
SETTINGS_HEADING = "settings (environment variables, read once at start; a bad value stops it):"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the settings list as written and show the default of each option that has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def settings_help() -> str:
    """List every setting with its default and meaning, as --help shows it."""
    lines = [SETTINGS_HEADING]
    for doc in Settings.documented():
        lines.append(f"  {doc.variable} (default: {doc.default.replace('`', '')})")
        lines.extend(
            textwrap.wrap(
                doc.meaning.replace("`", ""), WIDTH, initial_indent=INDENT, subsequent_indent=INDENT
            )
        )
    return "\n".join(lines)


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Start a command's parser whose --help ends with the settings."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=settings_help(), formatter_class=HelpFormatter
    )


Verbs = argparse._SubParsersAction  # what ArgumentParser.add_subparsers returns


def add_verb(
    verbs: Verbs[argparse.ArgumentParser], name: str, summary: str, description: str = ""
) -> argparse.ArgumentParser:
    """Add a subcommand whose --help, like its parent's, ends with the settings."""
    return verbs.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog=settings_help(),
        formatter_class=HelpFormatter,
    )


def settings_or_exit(command: str) -> Settings:
    """Read the settings, or stop with a message that names the bad one."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        sys.exit(f"{command}: {error}")


def run_or_exit(command: str, main: Coroutine[Any, Any, None]) -> None:
    """Run a command's coroutine; a bad setting found on the way stops it, naming the setting."""
    try:
        run_main(main)
    except SettingsError as error:
        sys.exit(f"{command}: {error}")

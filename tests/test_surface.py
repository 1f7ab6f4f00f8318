"""The public surface: exports, CLI help, settings layering."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import music_etl
from music_etl.adapters.storage.local import LocalStorage
from music_etl.cli.app import app
from music_etl.errors import ConfigError, Retryable, Terminal
from music_etl.pipeline.lake import mark_lake
from music_etl.settings import load_settings

runner = CliRunner()
COMMANDS = ["init", "generate", "run", "watch", "status", "query", "rebuild", "demo", "serve"]


def test_all_is_sorted_and_importable() -> None:
    assert music_etl.__all__ == sorted(music_etl.__all__)
    for name in music_etl.__all__:
        assert getattr(music_etl, name) is not None


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example: music-etl " + command in " ".join(result.output.split())


def test_top_level_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_user_mistake_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", "--lake", str(tmp_path / "empty")]).exit_code == 0
    result = runner.invoke(app, ["run", "--lake", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "raw/songs/songs.csv is missing" in " ".join(result.output.split())


def test_a_folder_that_is_not_a_lake_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "not-a-lake"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["run", "--lake", str(folder)])
    assert result.exit_code == 2
    assert "is not a music-etl lake" in " ".join(result.output.split())
    assert "music-etl init" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_bad_query_is_a_clean_error(tmp_path: Path) -> None:
    mark_lake(LocalStorage(tmp_path))
    result = runner.invoke(app, ["query", "--lake", str(tmp_path), "SELECT nope FROM top_genres"])
    assert result.exit_code == 2
    assert "Query failed" in result.output


def test_settings_precedence(tmp_path: Path) -> None:
    config = tmp_path / "music-etl.toml"
    config.write_text('lake = "/from/file"\nbad_row_threshold = 0.2\nlease_seconds = 30\n')
    env = {"MUSIC_ETL_LAKE": "/from/env", "MUSIC_ETL_LEASE_SECONDS": "45"}
    settings = load_settings(config=config, env=env, lake="/from/flag")
    assert settings.lake == "/from/flag"
    assert settings.lease_seconds == 45
    assert settings.bad_row_threshold == 0.2
    assert settings.engine == "polars"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"engine": "pandas"}, "Unknown engine"),
        ({"bad_row_threshold": 2}, "share between 0 and 1"),
        ({"now": "yesterday"}, "ISO-8601"),
        ({"lease_seconds": "soon"}, "must be a number"),
    ],
)
def test_bad_settings_say_what_to_fix(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={}, config=Path("/nonexistent.toml"), **flags)


def test_error_markers() -> None:
    assert issubclass(ConfigError, Terminal)
    assert not issubclass(ConfigError, Retryable)


def test_docstring_examples_of_the_logic_layer_hold() -> None:
    import doctest

    from music_etl.logic import checks, layout

    for module in (checks, layout):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__

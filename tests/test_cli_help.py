"""`bmsrl --help` and `bmsrl VERB --help` print each verb's one-line help as written (argparse
%-formats a help text but prints a description as is: a '%' must read '%' in both)."""

from __future__ import annotations

import pytest

from bmsrl import cli


@pytest.mark.parametrize("verb", list(cli.VERBS))
def test_verb_help_prints_its_text_once_formatted(verb, capsys):
    text = cli.VERBS[verb][1]
    with pytest.raises(SystemExit):
        cli.build_parser(only=verb).parse_args([verb, "--help"])
    verb_help = " ".join(capsys.readouterr().out.split())
    assert " ".join(text.split()) in verb_help and "%%" not in verb_help
    with pytest.raises(SystemExit):
        cli.build_parser(only=verb).parse_args(["--help"])
    top_help = capsys.readouterr().out
    assert "%%" not in top_help and verb in top_help


def test_the_aggregate_help_says_95_percent():
    assert "95 % t interval" in cli.VERBS["aggregate"][1]

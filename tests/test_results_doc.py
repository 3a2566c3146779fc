"""Results as artefacts: the snapshot stage (bmsrl snapshot) and docs/results.md rendered from
snapshot lookups (scripts/results_doc.py), never from numbers typed by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from bmsrl.errors import UserError
from bmsrl.snapshot import PROVENANCE, write_snapshot

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("results_doc", ROOT / "scripts" / "results_doc.py")
results_doc = importlib.util.module_from_spec(_spec)
sys.modules["results_doc"] = results_doc
_spec.loader.exec_module(results_doc)


@pytest.fixture
def snapshots(tmp_path):
    root = tmp_path / "results"
    (root / "default").mkdir(parents=True)
    (root / "default" / "summary.csv").write_text(
        "policy,profile,metric,mean,ci_low,ci_high\n"
        "dqn,p,recovered_share,0.912,0.901,0.923\n"
        "no_balancing,p,recovered_share,0,,\n"
        "dqn,q,recovered_share,0.5,0.4,0.6\n"
        "dqn,q,recovered_share,0.6,0.5,0.7\n",
        encoding="utf-8",
    )
    results_doc._table.cache_clear()
    return root


def test_values_intervals_and_empty_values(snapshots):
    text = (
        "DQN: {{ default/summary.csv | policy=dqn profile=p metric=recovered_share | mean | .2f }}; "
        "{{ci default/summary.csv | policy=dqn profile=p metric=recovered_share | mean ci_low ci_high | .3f }}; "
        "{{ci default/summary.csv | policy=no_balancing profile=p metric=recovered_share | mean ci_low ci_high | .2f }}; "
        "{{ default/summary.csv | policy=no_balancing profile=p metric=recovered_share | ci_low | .2f }}\n"
    )
    out = results_doc.render(text, snapshots)
    assert out.startswith(results_doc.HEADER.format(template="results.md.in"))
    assert out.endswith("DQN: 0.91; 0.912 [0.901, 0.923]; 0.00; n/a\n")


def test_negative_values_use_a_minus_sign(snapshots):
    (snapshots / "default" / "paired.csv").write_text("policy,mean_diff\ndqn,-0.034\n", encoding="utf-8")
    out = results_doc.render("{{ default/paired.csv | policy=dqn | mean_diff | +.2f }}\n", snapshots)
    assert out.endswith("−0.03\n")


@pytest.mark.parametrize(
    "lookup, message",
    [
        ("{{ default/none.csv | policy=dqn | mean | .2f }}", "no snapshot file"),
        ("{{ default/summary.csv | policy=ppo | mean | .2f }}", "select 0 rows"),
        ("{{ default/summary.csv | policy=dqn profile=q | mean | .2f }}", "select 2 rows"),
        ("{{ default/summary.csv | policy=dqn profile=p | median | .2f }}", "no column 'median'"),
        ("{{ default/summary.csv | colour=red | mean | .2f }}", "no column 'colour'"),
        ("{{ default/summary.csv | policy | mean | .2f }}", "not column=value"),
        ("{{ default/summary.csv | policy=dqn profile=p }}", "expected 'FILE | FILTERS"),
        ("{{ci default/summary.csv | policy=dqn profile=p | mean | .2f }}", "needs 3 column(s)"),
    ],
)
def test_a_lookup_that_does_not_resolve_names_the_line(snapshots, lookup, message):
    with pytest.raises(results_doc.TemplateError, match=r"line 2: .*" + __import__("re").escape(message)):
        results_doc.render("# Results\n" + lookup + "\n", snapshots)


def test_a_number_typed_into_the_prose_is_refused(snapshots):
    with pytest.raises(results_doc.TemplateError, match="line 1: the number 0.91 is typed by hand"):
        results_doc.render("DQN reaches 0.91 of the bound.\n", snapshots)
    # code, commands and comments may hold numbers; integers (seed counts, years) are prose
    allowed = (
        "`--config 'training={total_steps: {dqn: 4000000}}'` with 10 seeds (2024)\n"
        "```bash\nsnakemake --config lr=0.0003\n```\n<!-- made at 0.5 C -->\n"
    )
    assert results_doc.render(allowed, snapshots).endswith(allowed)


def test_docs_results_md_is_the_rendering_of_its_template():
    """Every number docs/results.md quotes is a lookup into a committed snapshot (run the script to fix)."""
    assert results_doc.main(["--check"]) == 0


def test_every_snapshot_folder_has_its_provenance():
    root = ROOT / "docs" / "results"
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        record = yaml.safe_load((folder / PROVENANCE).read_text(encoding="utf-8"))
        assert record["commit"] and record["command"].startswith("snakemake"), folder
        kept = sorted(p.name for p in folder.iterdir() if p.name != PROVENANCE and not p.name.startswith("."))
        assert sorted(record["files"]) == kept, folder


# ------------------------------------------------------------------------------- bmsrl snapshot
@pytest.fixture
def run(tmp_path):
    (tmp_path / "summary.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "metrics.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "config.yaml").write_text("seeds: [1, 2]\n", encoding="utf-8")
    (tmp_path / "versions.tsv").write_text("package\tversion\nnumpy\t2.0\ncommit\tfeed42\n", encoding="utf-8")
    return tmp_path


def _snapshot(run, out, **changes):
    args = dict(
        tables=[run / "summary.csv"],
        figures=[run / "metrics.png"],
        run_config=run / "config.yaml",
        versions=run / "versions.tsv",
        commit="abc123",
        command="snakemake snapshot",
    )
    args.update(changes)
    return write_snapshot(out, **args)


def test_snapshot_copies_files_and_records_provenance(run):
    out = _snapshot(run, run / "docs" / "default")
    assert sorted(p.name for p in out.iterdir()) == [PROVENANCE, "metrics.png", "summary.csv"]
    record = yaml.safe_load((out / PROVENANCE).read_text(encoding="utf-8"))
    assert record["commit"] == "feed42" and record["snapshot_commit"] == "abc123"  # the run's, then the snapshot's
    assert record["command"] == "snakemake snapshot"
    assert record["config"] == {"seeds": [1, 2]} and record["versions"] == {"numpy": "2.0"}
    assert record["files"] == ["metrics.png", "summary.csv"]


def test_snapshot_replaces_the_folder_whole(run):
    out = run / "docs" / "default"
    out.mkdir(parents=True)
    (out / "stale.csv").write_text("x\n1\n", encoding="utf-8")
    _snapshot(run, out, figures=[])
    assert sorted(p.name for p in out.iterdir()) == [PROVENANCE, "summary.csv"]
    assert [p.name for p in out.parent.iterdir()] == ["default"]  # no temporary folders left


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tables": [Path("missing.csv")]}, "no such file"),
        ({"figures": [Path("metrics.pdf")]}, "expected a .png file"),
        ({"commit": " "}, "--commit is empty"),
        ({"command": ""}, "--command is empty"),
    ],
)
def test_snapshot_refuses_bad_inputs_and_keeps_the_old_folder(run, change, message):
    out = _snapshot(run, run / "docs" / "default")
    before = (out / PROVENANCE).read_text(encoding="utf-8")
    with pytest.raises(UserError, match=message):
        _snapshot(run, out, **change)
    assert (out / PROVENANCE).read_text(encoding="utf-8") == before


def test_snapshot_refuses_two_files_of_one_name(run):
    (run / "sub").mkdir()
    (run / "sub" / "summary.csv").write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(UserError, match="two files named 'summary.csv'"):
        _snapshot(run, run / "out", tables=[run / "summary.csv", run / "sub" / "summary.csv"])

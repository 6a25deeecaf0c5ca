"""``archviz cost`` over lists (issue 24): every option of the sweep takes a comma list, the
cartesian product is one row each, a row is the single configuration's cost, an invalid
combination keeps a row saying why."""

from __future__ import annotations

import csv
import json
import random

import pytest
from typer.testing import CliRunner

import archviz
from archviz.cli import app
from archviz.cli.common import load_analysis
from archviz.core.cost import CostError
from archviz.results import CostReport, CostSweep
from archviz.runtime.costing import parse_list, sweep

runner = CliRunner()
DEVICES = ["a100", "h100", "gtx580", "v100", "l4"]
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
SEQS = [64, 128, 256, 512, 1024]


def test_parse_list_commas_and_powers_of_two() -> None:
    assert parse_list("1,2,4", "batch") == [1, 2, 4]
    assert parse_list("1..64", "batch") == [1, 2, 4, 8, 16, 32, 64]
    assert parse_list("3..20", "seq") == [3, 6, 12]
    assert parse_list("1..4,8,4", "batch") == [1, 2, 4, 8]          # each value once
    assert parse_list("a100, h100", "device") == ["a100", "h100"]
    assert parse_list([0, 3], "zero") == [0, 3]
    assert parse_list(None, "seq") == [None]
    for bad, flag in (("1,,2", "batch"), ("x", "gpus"), ("4..2", "batch"), ("0..8", "batch"), ("1..", "tp"),
                      ("a100,", "device")):
        with pytest.raises(CostError):
            parse_list(bad, flag)


def test_a_thousand_rows_each_the_single_configurations_cost() -> None:
    a = load_analysis("gpt2")
    lists = {"device": DEVICES, "batch": BATCHES, "seq": SEQS, "zero": [0, 1, 2, 3], "gpus": [8]}
    sw = sweep(a, lists, detail=False)          # the CLI's table and CSV path
    assert len(sw.rows) == 1000 and not any(r.error for r in sw.rows)
    assert [r.values for r in sw.rows[:2]] == [
        (("device", "a100"), ("gpus", 8), ("zero", 0), ("seq", 64), ("batch", 1)),
        (("device", "a100"), ("gpus", 8), ("zero", 0), ("seq", 64), ("batch", 2))]
    assert sw.varied == ("device", "zero", "seq", "batch") and sw.columns == ("device", "gpus", "zero", "seq",
                                                                                  "batch")
    for r in random.Random(24).sample(sw.rows, 8):
        v = dict(r.values)
        one = archviz.cost("gpt2", v["device"], batch=v["batch"], seq=v["seq"], zero=v["zero"], gpus=8)
        assert r.cost is not None and r.cost.layers == ()
        mine = {k: x for k, x in CostReport.of(r.cost).to_dict().items() if k != "layers"}
        assert mine == {k: x for k, x in one.to_dict().items() if k != "layers"}


def test_an_invalid_combination_keeps_its_row() -> None:
    r = runner.invoke(app, ["cost", "gpt2", "--gpus", "8", "--tp", "1,3", "--batch", "4", "-f", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(r.output.splitlines()))
    assert [x["tp"] for x in rows] == ["1", ""] and rows[0]["error"] == ""
    assert "not divisible by tp · pp = 3" in rows[1]["error"] and rows[1]["peak_gib"] == ""
    one = archviz.cost("gpt2", gpus=8, tp=1, batch=4)
    assert float(rows[0]["peak_gib"]) == round(one.peak / 2**30, 2)
    r = runner.invoke(app, ["cost", "gpt2", "--gpus", "8", "--tp", "1,3", "--batch", "4"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "invalid [1]" in r.output and "[1] --gpus 8 is not divisible" in r.output
    r = runner.invoke(app, ["cost", "gpt2", "--gpus", "8", "--tp", "1,3", "--batch", "1", "-f", "json"])
    d = json.loads(r.output)
    swept = {"device": "h100", "gpus": 8, "tp": 3, "zero": 0, "batch": 1}
    assert d[1] == {"schema_version": 1, "name": "GPT-2 small", "swept": swept,
                    "error": "--gpus 8 is not divisible by tp · pp = 3"}


def test_a_value_wrong_on_its_own_is_exit_2_not_a_row() -> None:
    # an unknown device or ZeRO stage is the user's mistake whatever the other values are
    for args, says in ((["--device", "a100,nonsuch"], "unknown device 'nonsuch'"),
                       (["--zero", "0,5"], "expected a ZeRO stage 0, 1, 2 or 3, got 5")):
        r = runner.invoke(app, ["cost", "gpt2", "--batch", "1,2", *args])
        assert r.exit_code == 2 and says in r.output, (args, r.output)
    with pytest.raises(archviz.ArchvizError, match="got 9"):
        archviz.cost("gpt2", ["a100", "h100"], batch=[1, 4], zero=[0, 9])


def test_one_invalid_configuration_or_none_valid_is_exit_2() -> None:
    for args in (["--gpus", "8", "--tp", "3"], ["--gpus", "8", "--tp", "3,5"], ["--zero", "4"]):
        r = runner.invoke(app, ["cost", "gpt2", *args])
        assert r.exit_code == 2 and "error:" in r.output, (args, r.output)
    r = runner.invoke(app, ["cost", "alexnet", "--seq", "16,32"])
    assert r.exit_code == 2 and "token-id input" in r.output


def test_columns_show_what_is_swept_or_set() -> None:
    r = runner.invoke(app, ["cost", "gpt2", "--seq", "128,256", "--batch", "1..2", "-f", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(r.output.splitlines()))
    assert list(rows[0])[:4] == ["device", "batch", "seq", "tp"] and "zero" not in rows[0]
    assert [(x["seq"], x["batch"]) for x in rows] == [("128", "1"), ("128", "2"), ("256", "1"), ("256", "2")]
    assert float(rows[3]["peak_gib"]) == round(archviz.cost("gpt2", seq=256, batch=2).peak / 2**30, 2)
    r = runner.invoke(app, ["cost", "lenet5", "--batch", "1,2", "--zero", "1", "--gpus", "2", "-f", "csv"])
    head = r.output.splitlines()[0].split(",")
    assert head[:4] == ["device", "batch", "gpus", "zero"] and "error" not in head


def test_the_api_sweep_is_the_clis_json() -> None:
    sw = archviz.cost("gpt2", ["a100", "h100"], batch=[1, 4], seq=128, tp=[1, 3], gpus=2)
    assert isinstance(sw, CostSweep) and len(sw) == 8
    r = runner.invoke(app, ["cost", "gpt2", "-d", "a100,h100", "-b", "1,4", "--seq", "128", "--tp", "1,3",
                            "--gpus", "2", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert sw.to_dict() == json.loads(r.output)
    one = archviz.cost("gpt2", "h100", batch=4, seq=128, tp=1, gpus=2)
    reports = list(sw)
    assert reports[5] is not None and reports[5].to_dict() == one.to_dict()     # h100, tp 1, batch 4
    assert reports[2] is None and "8 invalid" not in repr(sw) and "4 invalid" in repr(sw)
    assert "invalid [1]" in str(sw) and sw.to_csv().startswith("device,batch,seq,gpus,tp,")


def test_sweep_table_at_80_columns_drops_whole_columns_and_keeps_the_swept_ones() -> None:
    from typer.testing import CliRunner

    from archviz.cli import app

    r = CliRunner().invoke(app, ["cost", "gpt2", "--tp", "1,2,3", "--gpus", "6", "--batch", "8"],
                           env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    table = [ln for ln in r.output.splitlines() if ln.startswith(("┃", "│"))]
    assert table and all(len(ln) <= 80 for ln in table) and "…" not in r.output
    # tp is swept: the tp·dp·pp column says which row is which; what went is named
    assert [ln.split("│")[4].strip() for ln in table if ln.startswith("│")] == ["1·6·1", "2·3·1", "3·2·1"]
    assert "columns left out at 80 columns: compute" in r.output
    wide = CliRunner().invoke(app, ["cost", "gpt2", "--tp", "1,2,3", "--gpus", "6", "--batch", "8"],
                              env={"COLUMNS": "200"})
    assert "left out" not in wide.output and "largest batch" in wide.output

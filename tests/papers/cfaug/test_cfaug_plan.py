"""cfaug planning: every published row of Tables 1, 4 and 6 is a planned config at the spec's settings (§2, §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.errors import UserError
from repro.papers import get_paper
from repro.papers.cfaug.plans import RECIPES, ROWS, TABLE_DATASET, run_config, seeds
from repro.report.tables import read_published

SOURCE = {"prepared": "cfaug/x", "fingerprint": "f", "cagan": True}


def _ctx(profile: str = "paper", seeds_: int | None = None, **switches: str):
    return get_paper("cfaug").context(profile, seeds_, "code", switches, Path("out"), None)


@pytest.mark.parametrize("table", sorted(TABLE_DATASET))
def test_rows_are_the_published_rows_in_order(table):
    published = read_published("cfaug", table)
    rows = ROWS[TABLE_DATASET[table]]
    assert [(r.method, r.hparam) for r in rows[:-1]] == list(zip(published["method"], published["hparam"]))
    assert rows[-1].method == "Sal" and rows[-1].sal > rows[1].sal  # the saliency table's extra high-λ row


def test_paper_settings_follow_section_6():
    ctx = _ctx()
    in9 = run_config(ctx, "in9", ROWS["in9"][0], 5, SOURCE)
    assert (in9.epochs, in9.batch_size, in9.lr, in9.model) == (25, 32, 0.05, "bit_r50x1")
    assert in9.method_args["schedule"] == {"kind": "multistep", "milestones": [6, 12, 18], "gamma": 0.1}
    assert in9.model_args["init"] == "random" and in9.data["size"] == 224  # C-1
    cct = run_config(ctx, "cct", ROWS["cct"][0], 5, SOURCE)
    assert cct.optimizer["name"] == "rmsprop" and cct.model_args["head_init"] == "zero"
    assert cct.selection == "val/auc" and cct.batch_size == 64
    wb = run_config(ctx, "waterbirds", ROWS["waterbirds"][0], 5, SOURCE)
    assert wb.method_args["schedule"]["kind"] == "plateau" and wb.model_args["init"] == "bit_s"
    assert seeds(ctx) == (5, 10, 100)


def test_switches_reach_the_run_and_change_its_key():
    row = next(r for r in ROWS["in9"] if r.cf == "tile")
    code = run_config(_ctx(), "in9", row, 5, SOURCE)
    fixed = run_config(_ctx(tile_x0_bug="0", in9_init="bit_s"), "in9", row, 5, SOURCE)
    assert code.method_args["tile_x0_bug"] is True and fixed.method_args["tile_x0_bug"] is False
    assert fixed.model_args["init"] == "bit_s" and code.key != fixed.key


def test_fidelity_switches_c26_c27_reach_the_runs():
    """C-26 (IN-9 fg mask rule) reaches the IN-9 data settings only; C-27 (CF loss form) the objective."""
    row = next(r for r in ROWS["in9"] if r.cf == "grey")
    default = run_config(_ctx(), "in9", row, 5, SOURCE)
    other = run_config(_ctx(in9_fg_mask="all_channel", cf_loss="code"), "in9", row, 5, SOURCE)
    assert (default.data["fg_mask"], default.method_args["cf_form"]) == ("code", "stable")
    assert (other.data["fg_mask"], other.method_args["cf_form"]) == ("all_channel", "code")
    assert default.key != other.key
    assert "fg_mask" not in run_config(_ctx(), "waterbirds", ROWS["waterbirds"][0], 5, SOURCE).data
    with pytest.raises(UserError, match="switch C-26 in9_fg_mask takes"):
        _ctx(in9_fg_mask="any")


def test_artefact_init_is_the_runs_own_not_the_cli_init(tmp_path):
    from repro.papers import PlannedRun
    from repro.papers.cfaug.report import cfaug_provenance, run_inits
    from repro.runs.store import RunStore

    def planned(ctx, dataset):
        return PlannedRun(dataset, {"dataset": dataset, "seed": 5}, run_config(ctx, dataset, ROWS[dataset][0], 5,
                                                                                 SOURCE))

    store, ctx = RunStore(tmp_path), _ctx()
    assert ctx.init == "imagenet"
    assert run_inits([planned(ctx, "in9")], store) == "random"  # C-1 default: IN-9 from scratch
    assert run_inits([planned(ctx, "waterbirds"), planned(ctx, "cct")], store) == "bit_s"
    assert run_inits([planned(_ctx(in9_init="bit_s"), "in9")], store) == "bit_s"
    assert run_inits([planned(ctx, "in9"), planned(ctx, "waterbirds")], store) == "bit_s, random"
    assert run_inits([planned(_ctx("smoke"), "waterbirds")], store) == "random"  # the tiny model has no weights
    assert run_inits([], store) == "none"
    assert cfaug_provenance(ctx, "table4", [planned(ctx, "waterbirds")], store)["init"] == "bit_s"


def test_fgsm_epsilon_of_waterbirds_is_a_switch():
    row = next(r for r in ROWS["waterbirds"] if r.f == "fgsm")
    assert run_config(_ctx(), "waterbirds", row, 5, SOURCE).method_args["fgsm_eps"] == 0.5
    assert run_config(_ctx(wb_fgsm_eps="0.6"), "waterbirds", row, 5, SOURCE).method_args["fgsm_eps"] == 0.6


def test_reduced_profiles_scale_epochs_and_milestones():
    quick = run_config(_ctx("quick"), "in9", ROWS["in9"][0], 5, SOURCE)
    assert quick.epochs == 2 and quick.method_args["schedule"]["milestones"] == [1] and quick.data["size"] == 64
    smoke = run_config(_ctx("smoke"), "cct", ROWS["cct"][0], 5, SOURCE)
    assert smoke.model == "bit_tiny" and smoke.data["limits"]["train"] == 2 * smoke.batch_size
    assert seeds(_ctx("paper", 4)) == (5, 10, 100, 101)


def test_every_recipe_has_a_row_set():
    assert set(RECIPES) == set(ROWS) == set(TABLE_DATASET.values())

import pytest
from budgetpass.generation import models
from budgetpass.generation.budget import BudgetRequest, plan_budget

SMALL = models.REGISTRY["qwen2.5-coder-0.5b"].parameters
LARGE = models.REGISTRY["qwen2.5-coder-1.5b"].parameters


def test_flops_budget_for_the_bundled_pair_is_three_samples_per_call():
    budget = plan_budget(BudgetRequest(metric="flops", calls=1), SMALL, LARGE)
    assert budget.samples == 3  # 1.544B / 0.494B = 3.12
    assert "floor(3.12) = 3" in budget.derivation


def test_flops_budget_scales_with_calls():
    assert plan_budget(BudgetRequest(calls=2), SMALL, LARGE).samples == 6
    assert plan_budget(BudgetRequest(calls=4), SMALL, LARGE).samples == 12


def test_paper_pair_13b_vs_70b():
    assert plan_budget(BudgetRequest(calls=1), models.parameter_count("13B"),
                       models.parameter_count("70B")).samples == 5


def test_never_below_one_sample():
    budget = plan_budget(BudgetRequest(calls=1), LARGE, SMALL)
    assert budget.samples == 1 and "minimum of 1" in budget.derivation


def test_samples_metric_is_taken_as_is():
    assert plan_budget(BudgetRequest(metric="samples", samples=7), SMALL, LARGE).samples == 7


@pytest.mark.parametrize("kwargs", [{"metric": "watts"}, {"calls": 0}, {"calls": float("nan")},
                                    {"samples": 0}])
def test_invalid_budgets_are_refused(kwargs):
    with pytest.raises(ValueError):
        BudgetRequest(**kwargs)


def test_parameter_count_parses_sizes():
    assert models.parameter_count("1.5e9") == 1_500_000_000
    assert models.parameter_count("135M") == 135_000_000

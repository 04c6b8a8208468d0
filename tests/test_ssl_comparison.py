"""check_comparison compares the table with the results and health it was built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlsaudio.ssl import checks

METHODS = ("supervised", "contrastive", "byol", "simsiam")
KS = ("1", "2", "5", "10", "all")


def checks_column(k: str) -> str:
    return "probe all" if k == "all" else f"probe k={k}"


def _results_and_health(seed: int = 0):
    """Distinct numbers for every method and cell, as evaluate() and health_metrics() give them."""
    rng = np.random.default_rng(seed)
    results, health = {}, {}
    for name in METHODS:
        means = np.sort(rng.uniform(0.2, 0.99, size=len(KS)))
        results[name] = {
            "probe": {
                k: {"mean": float(m), "std": float(rng.uniform(0.01, 0.05)), "labels": 10}
                for k, m in zip(KS, means, strict=True)
            },
            "knn": float(rng.uniform(0.5, 0.99)),
        }
        health[name] = {
            "std": float(rng.uniform(0.02, 0.09)),
            "std_healthy": 0.088,
            "effective_rank": float(rng.uniform(2, 30)),
            "alignment": float(rng.uniform(0.05, 0.6)),
            "uniformity": float(rng.uniform(-3.5, -1)),
        }
    return results, health


def _reference_table(results, health) -> pd.DataFrame:
    """Built as the solution builds it."""
    rows = {}
    for name in METHODS:
        row = {checks_column(k): results[name]["probe"][k]["mean"] for k in KS}
        row["knn"] = results[name]["knn"]
        row.update(
            {key: health[name][key] for key in ("std", "effective_rank", "alignment", "uniformity")}
        )
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _another_right_table(results, health) -> pd.DataFrame:
    """The same numbers written differently: columns first, rounded for display, rows reordered."""
    columns = {checks_column(k): [results[n]["probe"][k]["mean"] for n in METHODS] for k in KS}
    columns["knn"] = [results[n]["knn"] for n in METHODS]
    for key in ("std", "effective_rank", "alignment", "uniformity"):
        columns[key] = [health[n][key] for n in METHODS]
    return pd.DataFrame(columns, index=list(METHODS)).round(3).iloc[::-1]


def test_right_tables_pass(capsys):
    results, health = _results_and_health()
    checks.check_comparison(_reference_table(results, health), results, health)
    checks.check_comparison(_another_right_table(results, health), results, health)
    assert capsys.readouterr().out.count("matches results and health") == 2


def test_without_results_only_the_shape_is_checked(capsys):
    results, health = _results_and_health()
    table = _reference_table(results, health)
    checks.check_comparison(table.assign(knn=0.5))
    assert "matches" not in capsys.readouterr().out


def test_swapped_rows_name_the_method_whose_numbers_they_are():
    results, health = _results_and_health()
    table = _reference_table(results, health)
    table.loc[["byol", "simsiam"]] = table.loc[["simsiam", "byol"]].to_numpy()
    with pytest.raises(
        AssertionError, match=r"table.loc\['byol', 'probe k=1'\].*the number of 'simsiam'"
    ):
        checks.check_comparison(table, results, health)


def test_the_spread_instead_of_the_mean_is_named():
    results, health = _results_and_health()
    table = _reference_table(results, health)
    table.loc["contrastive", "probe k=5"] = results["contrastive"]["probe"]["5"]["std"]
    with pytest.raises(AssertionError, match=r"spread over the draws \('std'\)"):
        checks.check_comparison(table, results, health)


def test_shifted_columns_name_the_k_they_hold():
    results, health = _results_and_health()
    table = _reference_table(results, health)
    table.loc["supervised", "probe k=2"] = results["supervised"]["probe"]["10"]["mean"]
    with pytest.raises(AssertionError, match="that is the probe with k=10"):
        checks.check_comparison(table, results, health)


def test_a_made_up_number_and_a_health_cell_are_caught():
    results, health = _results_and_health()
    table = _reference_table(results, health)
    with pytest.raises(AssertionError, match=r"table.loc\['byol', 'knn'\] is 0.9990 but results"):
        checks.check_comparison(
            table.assign(knn=[r["knn"] for r in results.values()]).replace(
                {"knn": {results["byol"]["knn"]: 0.999}}
            ),
            results,
            health,
        )
    table.loc["simsiam", "effective_rank"] += 1.0
    with pytest.raises(AssertionError, match=r"health\['simsiam'\]\['effective_rank'\]"):
        checks.check_comparison(table, results, health)


def test_results_missing_a_method_say_so():
    results, health = _results_and_health()
    table = _reference_table(results, health)
    del results["byol"]
    with pytest.raises(AssertionError, match="results has no entry 'byol'"):
        checks.check_comparison(table, results, health)

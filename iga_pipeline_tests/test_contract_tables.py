"""The contract's tables, as the pipeline's reference data holds them (raw-deliveries.md:
reference facts, status and intervention mappings, register codes; rules.md: goals,
benchmarks, money). The pipeline reads only its own copy (iga_pipeline/reference/); these
pin that copy to the contract's words, so that a changed code, target or value fails here
and not only, perhaps, in a Table 1 figure."""

from __future__ import annotations

import datetime as dt

from iga_pipeline import reference


def test_cycles_providers_and_target_groups_are_the_reference_facts():
    expected = {
        1: ("2009-01-01", "2009-06-30", "Pethö Consulting", "petho", "flykting"),
        2: ("2009-07-01", "2009-12-31", "Folkuniversitetet", "folkuniversitetet", "flykting"),
        3: ("2010-01-01", "2010-06-30", "Folkuniversitetet", "folkuniversitetet", "flykting"),
        4: ("2010-07-01", "2010-12-31", "Folkuniversitetet", "folkuniversitetet", "flykting"),
        5: ("2011-01-01", "2011-06-30", "Åstorps kommun", "astorp", "ifo"),
        6: ("2011-07-01", "2011-12-31", "Åstorps kommun", "astorp", "ifo"),
        7: ("2012-01-01", "2012-06-30", "Åstorps kommun", "astorp", "ifo"),
        8: ("2012-07-01", "2012-12-31", "Åstorps kommun", "astorp", "ifo"),
    }
    got = {n: (c.start, c.end, c.provider, c.source_kind, c.target_group) for n, c in reference.cycles().items()}
    assert got == {n: (dt.date.fromisoformat(s), dt.date.fromisoformat(e), p, k, g)
                   for n, (s, e, p, k, g) in expected.items()}


def test_municipalities_are_the_scb_codes():
    assert reference.municipalities() == {"1277": "Åstorp", "1278": "Båstad", "1275": "Perstorp",
                                          "1257": "Örkelljunga", "1292": "Ängelholm"}


def test_register_codes_are_the_contracts():
    assert reference.register_codes("kon") == {"K", "M"}
    assert reference.register_codes("malgrupp") == {"flykting", "ifo"}
    assert reference.register_codes("avbrott_orsak") == {"flytt", "motivation", "sjukdom", "foraldraledighet",
                                                         "annat"}


def test_every_status_maps_to_the_harmonised_detail_and_class():
    # raw-deliveries.md, "Harmonised outcome": detail, class, Pethö text, Folkuniversitetet code, Åstorp code
    table = [
        ("employment", "work", "Anställd", "1", "ANST"),
        ("self_employment", "work", "Eget företag", "2", "FTG"),
        ("education", "studies", "Studier", "3", "STUD"),
        ("programme", "studies", "Annat projekt", "4", "PROJ"),
        ("job_seeking", "other", "Arbetssökande", "5", "ASOK"),
        ("sick_leave", "other", "Sjukskriven", "6", "SJUK"),
        ("parental_leave", "other", "Föräldraledig", "7", "FLED"),
        ("unknown", "unknown", "Okänt", "9", "OKAND"),
    ]
    classes = reference.outcome_classes()
    petho, fu, astorp = (reference.outcome_codes(k) for k in ("petho", "folkuniversitetet", "astorp"))
    for detail, cls, text, code, astorp_code in table:
        assert classes[detail] == cls
        assert petho[text.casefold()] == detail  # compared case-insensitively
        assert fu[code] == detail
        assert astorp[astorp_code] == detail
    assert petho[""] == "unknown" and astorp[""] == "unknown"  # empty / null is unknown
    assert set(classes) == {d for d, *_ in table}
    assert {k for k in fu} == {code for *_, code, _ in table}  # no code 8, nothing else


def test_interventions_harmonise_as_the_contract_says():
    order = ["validation", "vocational_trial", "civic_orientation", "job_search", "internship", "job_coaching"]
    assert list(reference.INTERVENTIONS) == order
    petho = ["Validering", "Yrkesprövning", "Samhällsorientering", "Jobbsökning", "Praktik", "Arbetscoachning"]
    assert reference.intervention_codes("petho") == {t.casefold(): i for t, i in zip(petho, order)}
    astorp = ["VALIDERING", "YRKESPROVNING", "SAMHALLSORIENTERING", "JOBBSOKNING", "PRAKTIK", "COACHNING"]
    assert reference.intervention_codes("astorp") == dict(zip(astorp, order))
    # Folkuniversitetet's four hour columns map to the first four
    fu = ["Timmar validering", "Timmar yrkesprövning", "Timmar samhällsorientering", "Timmar jobbsökning"]
    assert reference.intervention_codes("folkuniversitetet") == dict(zip(fu, order[:4]))


def test_goals_are_the_applications():
    goals = reference.goals().set_index("goal_id")
    expected = {
        "HM1": ("survey_large_or_very_large", "survey_answered", 0.95, "0.5"),
        "HM2": ("work_90d", "completed", 0.45, None),
        "HM2_rev": ("work_90d + studies_90d", "completed", 0.45, None),
        "DM1": ("studies_90d", "completed - work_90d", 0.30, None),
    }
    assert set(goals.index) == set(expected)
    for goal, (num, den, target, coverage) in expected.items():
        g = goals.loc[goal]
        assert (g["numerator"], g["denominator"], g["target"], g["min_cycle_coverage"]) == (num, den, target, coverage)


def test_benchmarks_and_budget_are_the_contracts():
    values = dict(zip(reference.benchmarks()["benchmark_id"], reference.benchmarks()["value"]))
    assert values == {"ESF_NATIONAL": 0.33, "ESF_SYDSVERIGE": 0.27, "ESF_FOREIGN_BORN_EUROPE": 0.27,
                      "ESF_FOREIGN_BORN_MIN": 0.20}
    budget = reference.budget()
    assert (budget["total"], budget["esf_support"]) == (29_090_968, 12_464_585)

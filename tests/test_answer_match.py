import pytest

from fireact_eval.answer_match import exact_match, f1, normalize_answer


@pytest.mark.parametrize(
    ("prediction", "gold", "em"),
    [
        ("Kettwick", "Kettwick", 1.0),
        ("the Kettwick.", "kettwick", 1.0),  # articles, punctuation and case are ignored
        ("  An   apple ", "apple", 1.0),
        ("14,000", "14000", 1.0),  # punctuation inside numbers is dropped, as in HotpotQA
        ("Kettwick village", "Kettwick", 0.0),
        (None, "Kettwick", 0.0),
        ("", "Kettwick", 0.0),
    ],
)
def test_exact_match(prediction, gold, em):
    assert exact_match(prediction, gold) == em


def test_f1_partial_overlap():
    # prediction tokens {halden, cross}, gold {halden, cross, rovers}: P=1, R=2/3
    assert f1("Halden Cross", "Halden Cross Rovers") == pytest.approx(0.8)


def test_f1_yes_no_must_match_exactly():
    assert f1("yes", "no") == 0.0
    assert f1("yes it is", "yes") == 0.0  # the official script's yes/no rule
    assert f1("yes", "yes") == 1.0


def test_f1_no_overlap_and_none():
    assert f1("Brannock", "Pellow") == 0.0
    assert f1(None, "Pellow") == 0.0


def test_normalize_answer():
    assert normalize_answer("The  Glass Bell!") == "glass bell"


def test_an_empty_gold_answer_matches_nothing():
    assert exact_match("", "") == 0.0 and exact_match("the", "a") == 0.0
    assert exact_match("x", "") == 0.0

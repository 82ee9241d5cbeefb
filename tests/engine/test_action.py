import pytest

from reconciler.engine import Action


@pytest.mark.parametrize(
    ("action", "symbol", "actions", "replace", "creates", "deletes"),
    [
        (Action.NOOP, " ", ["no-op"], False, False, False),
        (Action.CREATE, "+", ["create"], False, True, False),
        (Action.UPDATE, "~", ["update"], False, False, False),
        (Action.DELETE_CREATE, "-/+", ["delete", "create"], True, True, True),
        (Action.CREATE_DELETE, "+/-", ["create", "delete"], True, True, True),
        (Action.DELETE, "-", ["delete"], False, False, True),
    ],
)
def test_action_properties(
    action: Action, symbol: str, actions: list[str], replace: bool, creates: bool, deletes: bool
) -> None:
    assert action.symbol == symbol
    assert action.json_actions == actions
    assert action.is_replace is replace
    assert action.creates is creates
    assert action.deletes is deletes
    assert Action(action.value) is action
    assert str(action) == action.value


def test_json_actions_is_a_fresh_list() -> None:
    Action.CREATE.json_actions.append("mutated")
    assert Action.CREATE.json_actions == ["create"]

"""The rules for names and terms that both the API and the command line accept, in one place: the
API's request models use the patterns, the store enforces the functions (so `facegate doors add`
cannot create a door the API could not address)."""

import re

from facegate.errors import FacegateError

DOOR_NAME_MAX = 100
DOOR_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
WEEKDAYS_PATTERN = r"^[0-6]{1,7}$"  # digits 0 (Monday) to 6; check_weekdays: each at most once
DISPLAY_NAME_MAX = 200


class InvalidNameError(FacegateError):
    code = "invalid_name"


def check_door_name(name: str) -> str:
    """`name` when it is a door name the API can address; InvalidNameError otherwise."""
    if not isinstance(name, str) or not 1 <= len(name) <= DOOR_NAME_MAX:
        raise InvalidNameError(f"a door's name is 1-{DOOR_NAME_MAX} characters")
    if not re.match(DOOR_NAME_PATTERN, name):
        raise InvalidNameError(
            f"door name {name[:40]!r} is not allowed: letters, digits, '_', '.' and '-' only, "
            "starting with a letter or digit"
        )
    return name


def check_weekdays(weekdays: str) -> str:
    valid = isinstance(weekdays, str) and re.match(WEEKDAYS_PATTERN, weekdays)
    if not valid or len(set(weekdays)) != len(weekdays):
        raise InvalidNameError(
            f"weekdays are digits 0 (Monday) to 6, each at most once, got {weekdays!r}"
        )
    return weekdays


def check_display_name(name: str) -> str:
    """The name stripped; refused when blank or longer than DISPLAY_NAME_MAX."""
    stripped = (name or "").strip()
    if not stripped:
        raise InvalidNameError("a person's display name must not be blank")
    if len(stripped) > DISPLAY_NAME_MAX:
        raise InvalidNameError(f"a person's display name is at most {DISPLAY_NAME_MAX} characters")
    return stripped


def like_pattern(term: str) -> str:
    """A LIKE pattern matching `term` anywhere, with its own % and _ taken literally
    (escape character: backslash)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"

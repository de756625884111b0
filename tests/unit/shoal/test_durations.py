"""Go-style durations as classic Swarm's flags take them."""
import pytest
from hypothesis import given, strategies as st

from shoal.durations import parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("60s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("3", 3.0), ("0", 0.0), ("1.5h", 5400.0),
    ("2h45m", 9900.0), ("250us", 0.00025), ("-2s", -2.0), ("+3s", 3.0), (".5s", 0.5),
])
def test_valid_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1x", "s", "1s2", "--1s", "-", "1 s", "ms5"])
def test_invalid_durations_say_which_value(text: str) -> None:
    with pytest.raises(ValueError, match=f'invalid duration "{text}"'):
        parse_duration(text)


@given(hours=st.integers(0, 99), minutes=st.integers(0, 59), seconds=st.integers(0, 59),
       millis=st.integers(0, 999))
def test_parts_add_up(hours: int, minutes: int, seconds: int, millis: int) -> None:
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    assert parse_duration(text) == pytest.approx(hours * 3600 + minutes * 60 + seconds + millis / 1000)

"""The control-character checks every form field and every certificate name goes through."""

from __future__ import annotations

import sys

import pytest

from webapp import pki
from webapp.validation import InputError, has_control, is_control, text


@pytest.mark.parametrize("multiline", [False, True])
def test_the_search_finds_exactly_the_characters_is_control_names(multiline):
    """has_control, one regular expression, against is_control's Unicode categories, for every
    code point."""
    differ = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if has_control(chr(code), multiline) != is_control(chr(code), multiline)
    ]
    assert differ == []


def test_a_control_character_anywhere_in_a_value_is_found():
    assert not has_control("www.example.com")
    assert has_control("www.example.com\u202e")
    assert has_control("a\x7fb") and has_control("\x00")
    assert has_control("two\nlines") and not has_control("two\nlines\ttab\r", multiline=True)
    assert has_control("bell\x07", multiline=True)


def test_fields_and_names_refuse_or_show_what_the_search_finds():
    with pytest.raises(InputError, match="control character"):
        text("Ops\u2028Team", field="name", label="name", max_length=50)
    assert text("two\nlines", field="note", label="note", max_length=50, multiline=True)
    assert pki.visible("evil\u202etxt.exe") == "evil\\E2\\80\\AEtxt.exe"
    assert pki.visible("plain.example.com") == "plain.example.com"

"""The one way both modules' self-checks call a student's function (dlsaudio.student_calls)."""

import pytest
import torch

from dlsaudio.student_calls import call_student, not_implemented, on_error


def add(a, b):
    return a + b


def stub(a, b):
    raise NotImplementedError()


def divides(a, b):
    return b / 0


def asserts(a, b):
    assert a > b, "a must exceed b"


def test_returns_what_the_function_returns():
    assert call_student(add, (1,), {"b": 2}) == 3


def test_the_stub_says_which_cell_to_fill():
    with pytest.raises(NotImplementedError, match=r"# YOUR CODE HERE in `stub`") as info:
        call_student(stub, (1, 2))
    assert str(info.value) == not_implemented(stub)


def test_a_wrong_signature_fails_before_the_call_when_the_task_names_one():
    with pytest.raises(
        AssertionError,
        match=r"wrong signature: the check calls add\(1, 2, 3\).*define it as f\(a, b\)",
    ):
        call_student(add, (1, 2, 3), expected="f(a, b)")
    with pytest.raises(
        AssertionError, match=r"raised TypeError: .*The check called add\(1, 2, 3\)"
    ):
        call_student(add, (1, 2, 3))


def test_an_exception_names_the_function_the_call_and_the_known_mistake():
    tensor = torch.zeros(2, 3)
    with pytest.raises(
        AssertionError,
        match=r"`divides` raised ZeroDivisionError: .*The check called "
        r"divides\(<float32 tensor of shape \(2, 3\)>, 1\)\. Do not divide by zero\.",
    ):
        call_student(
            divides, (tensor, 1), hints=[on_error(ZeroDivisionError, "Do not divide by zero.")]
        )
    with pytest.raises(
        AssertionError, match=r"The check called my call, expecting f\(a, b\).*traceback"
    ):
        call_student(divides, (1.0, 1), called="my call", expected="f(a, b)")


def test_a_hint_applies_only_to_its_kind_and_text():
    hint = on_error(RuntimeError, "advice", "needle")
    assert hint(RuntimeError("a needle here")) == "advice"
    assert hint(RuntimeError("nothing")) == ""
    assert hint(ValueError("a needle here")) == ""


def test_general_hints_follow_the_checks_own():
    leaf = torch.zeros(2, requires_grad=True)

    def update(p):
        p.add_(1.0)

    with pytest.raises(
        AssertionError, match=r"in-place operation.*inside `with torch.no_grad\(\):`"
    ):
        call_student(update, (leaf,))


def test_an_assertion_in_the_students_code_says_how_it_was_called():
    with pytest.raises(AssertionError, match=r"`asserts` raised AssertionError: a must exceed b"):
        call_student(asserts, (1, 2))
